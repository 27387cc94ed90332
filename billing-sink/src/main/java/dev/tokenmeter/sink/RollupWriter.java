package dev.tokenmeter.sink;

import dev.tokenmeter.events.RollupPeriod;
import dev.tokenmeter.events.UsageRollup;
import dev.tokenmeter.events.serde.EventSerdes;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.Field;
import org.jooq.Record;
import org.jooq.Table;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.tokenmeter.db.jooq.Tables.USAGE_ROLLUP_DAILY;
import static dev.tokenmeter.db.jooq.Tables.USAGE_ROLLUP_MONTHLY;

/**
 * Upserts the aggregator's attribution rollups (issue 17, ADR 0078) into {@code usage_rollup_daily} and
 * {@code usage_rollup_monthly}, guarded by revision exactly as {@link TotalsWriter} writes totals: a stored row is
 * replaced only by a higher revision, so a redelivered or reordered older rollup never overwrites a newer one.
 * Positions are saved in the same transaction; a record that cannot be decoded, or a row the database refuses, is
 * set aside to {@code sink_dead_letter} with the reason ({@link Refusals}, ADR 0055).
 */
final class RollupWriter implements BatchWriter {

    private static final Logger log = LoggerFactory.getLogger(RollupWriter.class);

    private final DSLContext db;
    private final OffsetStore offsets;
    private final SinkMetrics metrics;

    RollupWriter(DSLContext db, OffsetStore offsets, SinkMetrics metrics) {
        this.db = db;
        this.offsets = offsets;
        this.metrics = metrics;
    }

    @Override
    public void write(List<ConsumerRecord<byte[], byte[]>> records, Map<TopicPartition, Long> nextOffsets) {
        Map<String, Pending> latest = new LinkedHashMap<>();
        List<DeadLetter> dead = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> record : records) {
            UsageRollup r;
            try {
                r = EventSerdes.usageRollup().decode(record.value());
            } catch (RuntimeException e) {
                dead.add(DeadLetter.of(record, "undecodable rollup: " + e.getMessage()));
                continue;
            }
            if (r.getCostNanoUsd() < 0 || r.getEventCount() < 0 || r.getRevision() < 1) {
                dead.add(DeadLetter.of(record, "invalid rollup: negative amounts or revision < 1"));
                continue;
            }
            String key = r.getPeriod() + "|" + r.getUserId() + "|" + r.getProject() + "|" + r.getDimension() + "|"
                    + r.getValue() + "|" + r.getPeriodStart().toEpochMilli();
            latest.merge(key, new Pending(r, List.of(record)), (a, b) -> {
                List<ConsumerRecord<byte[], byte[]>> both = new ArrayList<>(a.records());
                both.addAll(b.records());
                return new Pending(b.rollup().getRevision() >= a.rollup().getRevision() ? b.rollup() : a.rollup(), both);
            });
        }
        List<DeadLetter> refused = new ArrayList<>();
        int[] written = new int[1];
        int[] refusedRows = new int[1];
        db.transaction(cfg -> {
            DSLContext tx = DSL.using(cfg);
            written[0] = Refusals.writeSettingAside(tx, new ArrayList<>(latest.values()), RollupWriter::upsertRows,
                    (row, reason) -> {
                        refusedRows[0]++;
                        row.records().forEach(r -> refused.add(DeadLetter.of(r, reason)));
                    });
            List<DeadLetter> all = new ArrayList<>(dead);
            all.addAll(refused);
            DeadLetter.insert(tx, all);
            offsets.save(tx, nextOffsets);
        });
        if (refusedRows[0] > 0) {
            log.warn("set aside {} rollups the database refused ({} records in sink_dead_letter)", refusedRows[0], refused.size());
        }
        metrics.totalRows.increment(written[0]);
        metrics.refusedRows.increment(refusedRows[0]);
        metrics.deadLetters.increment(dead.size() + refused.size());
    }

    private record Pending(UsageRollup rollup, List<ConsumerRecord<byte[], byte[]>> records) {
    }

    private static int upsertRows(DSLContext tx, List<Pending> rows) {
        List<UsageRollup> daily = new ArrayList<>();
        List<UsageRollup> monthly = new ArrayList<>();
        for (Pending p : rows) {
            (p.rollup().getPeriod() == RollupPeriod.DAY ? daily : monthly).add(p.rollup());
        }
        upsert(tx, USAGE_ROLLUP_DAILY, USAGE_ROLLUP_DAILY.DAY, daily);
        upsert(tx, USAGE_ROLLUP_MONTHLY, USAGE_ROLLUP_MONTHLY.BILLING_MONTH, monthly);
        return rows.size();
    }

    /** One multi-row upsert into either table; they differ only in the period column (a date either way). */
    private static <R extends Record> void upsert(DSLContext tx, Table<R> table, Field<LocalDate> period,
                                                  List<UsageRollup> rollups) {
        if (rollups.isEmpty()) {
            return;
        }
        List<Field<?>> keys = List.of(col(table, "user_id"), col(table, "project"), col(table, "dimension"),
                col(table, "value"), period);
        List<String> values = List.of("tenant_id", "event_count", "prompt_tokens", "completion_tokens", "cost_nano_usd",
                "revision");
        List<Field<?>> columns = new ArrayList<>(keys);
        values.forEach(v -> columns.add(col(table, v)));
        var insert = tx.insertInto(table, columns);
        for (UsageRollup r : rollups) {
            insert = insert.values(r.getUserId(), r.getProject(), r.getDimension(), r.getValue(),
                    r.getPeriodStart().atZone(ZoneOffset.UTC).toLocalDate(), r.getTenantId(), r.getEventCount(),
                    r.getPromptTokens(), r.getCompletionTokens(), r.getCostNanoUsd(), r.getRevision());
        }
        Map<Field<?>, Object> updates = new LinkedHashMap<>();
        values.forEach(v -> updates.put(col(table, v), DSL.excluded(col(table, v))));
        updates.put(table.field("updated_at"), DSL.currentOffsetDateTime());
        Field<Long> revision = table.field("revision", Long.class);
        insert.onConflict(keys).doUpdate().set(updates).where(revision.lt(DSL.excluded(revision))).execute();
    }

    private static Field<?> col(Table<?> table, String name) {
        Field<?> field = table.field(name);
        if (field == null) {
            throw new IllegalStateException(table.getName() + " has no column " + name);
        }
        return field;
    }
}
