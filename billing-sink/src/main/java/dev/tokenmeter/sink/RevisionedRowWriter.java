package dev.tokenmeter.sink;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.Field;
import org.jooq.Table;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The write path shared by the aggregator's running rows (totals, rollups): decode each record (an undecodable or
 * invalid one goes to {@code sink_dead_letter} with its reason), keep within the batch only the newest revision per
 * row key (one row per key per statement) with every record that carried it, upsert them guarded by revision, set
 * aside each row the database refuses for good with all its records ({@link Refusals}, ADR 0055), and save the
 * positions in the same transaction.
 *
 * @param <V> the decoded value
 */
abstract class RevisionedRowWriter<V> implements BatchWriter {

    private static final Logger log = LoggerFactory.getLogger(RevisionedRowWriter.class);

    private final DSLContext db;
    private final OffsetStore offsets;
    private final SinkMetrics metrics;
    private final String kind;

    /** @param kind what one row is, for dead-letter reasons and the log ("total", "rollup") */
    RevisionedRowWriter(DSLContext db, OffsetStore offsets, SinkMetrics metrics, String kind) {
        this.db = db;
        this.offsets = offsets;
        this.metrics = metrics;
        this.kind = kind;
    }

    /** Decodes one record's value; throws on bytes that are not one. */
    abstract V decode(byte[] value);

    /** Why a decoded value cannot be written (negative amounts, revision below 1), or null. */
    abstract String problem(V value);

    /** The row's primary key, as a string. */
    abstract String key(V value);

    /** The value to write when a batch holds two revisions of one row. */
    abstract V newer(V a, V b);

    /** Upserts these rows (one per key), a stored row replaced only by a higher revision. */
    abstract void upsert(DSLContext tx, List<V> rows);

    /** The newest value of one row in this batch, and the records that carried it or an older revision. */
    private record Pending<V>(V value, List<ConsumerRecord<byte[], byte[]>> records) {}

    @Override
    public final void write(List<ConsumerRecord<byte[], byte[]>> records, Map<TopicPartition, Long> nextOffsets) {
        Map<String, Pending<V>> latest = new LinkedHashMap<>();
        List<DeadLetter> dead = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> record : records) {
            V v;
            try {
                v = decode(record.value());
            } catch (RuntimeException e) {
                dead.add(DeadLetter.of(record, "undecodable " + kind + ": " + e.getMessage()));
                continue;
            }
            String problem = problem(v);
            if (problem != null) {
                dead.add(DeadLetter.of(record, "invalid " + kind + ": " + problem));
                continue;
            }
            latest.merge(key(v), new Pending<>(v, List.of(record)), (a, b) -> {
                List<ConsumerRecord<byte[], byte[]>> both = new ArrayList<>(a.records());
                both.addAll(b.records());
                return new Pending<>(newer(a.value(), b.value()), both);
            });
        }
        List<DeadLetter> refused = new ArrayList<>();
        int[] written = new int[1];
        int[] refusedRows = new int[1];
        db.transaction(cfg -> {
            DSLContext tx = DSL.using(cfg);
            written[0] = Refusals.writeSettingAside(tx, new ArrayList<>(latest.values()), (t, rows) -> {
                        upsert(t, rows.stream().map(Pending::value).toList());
                        return rows.size();
                    },
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
            log.warn("set aside {} {} rows the database refused ({} records in sink_dead_letter)", refusedRows[0], kind,
                    refused.size());
        }
        metrics.totalRows.increment(written[0]);
        metrics.refusedRows.increment(refusedRows[0]);
        metrics.deadLetters.increment(dead.size() + refused.size());
    }

    /** A column of {@code table} by name; fails loudly when the schema lacks it. */
    static Field<?> col(Table<?> table, String name) {
        Field<?> field = table.field(name);
        if (field == null) {
            throw new IllegalStateException(table.getName() + " has no column " + name);
        }
        return field;
    }
}
