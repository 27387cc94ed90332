package dev.tokenmeter.sink;

import dev.tokenmeter.events.RollupPeriod;
import dev.tokenmeter.events.UsageRollup;
import dev.tokenmeter.events.serde.EventSerdes;
import org.jooq.DSLContext;
import org.jooq.Field;
import org.jooq.Record;
import org.jooq.Table;
import org.jooq.impl.DSL;

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
final class RollupWriter extends RevisionedRowWriter<UsageRollup> {

    RollupWriter(DSLContext db, OffsetStore offsets, SinkMetrics metrics) {
        super(db, offsets, metrics, "rollup");
    }

    @Override
    UsageRollup decode(byte[] value) {
        return EventSerdes.usageRollup().decode(value);
    }

    @Override
    String problem(UsageRollup r) {
        return r.getCostNanoUsd() < 0 || r.getEventCount() < 0 || r.getRevision() < 1
                ? "negative amounts or revision < 1" : null;
    }

    @Override
    String key(UsageRollup r) {
        return r.getPeriod() + "|" + r.getUserId() + "|" + r.getProject() + "|" + r.getDimension() + "|"
                + r.getValue() + "|" + r.getPeriodStart().toEpochMilli();
    }

    @Override
    UsageRollup newer(UsageRollup a, UsageRollup b) {
        return b.getRevision() >= a.getRevision() ? b : a;
    }

    @Override
    void upsert(DSLContext tx, List<UsageRollup> rows) {
        List<UsageRollup> daily = new ArrayList<>();
        List<UsageRollup> monthly = new ArrayList<>();
        for (UsageRollup r : rows) {
            (r.getPeriod() == RollupPeriod.DAY ? daily : monthly).add(r);
        }
        upsert(tx, USAGE_ROLLUP_DAILY, USAGE_ROLLUP_DAILY.DAY, daily);
        upsert(tx, USAGE_ROLLUP_MONTHLY, USAGE_ROLLUP_MONTHLY.BILLING_MONTH, monthly);
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
}
