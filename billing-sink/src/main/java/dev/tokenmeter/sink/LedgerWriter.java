package dev.tokenmeter.sink;

import dev.tokenmeter.db.jooq.tables.records.UsageLedgerRecord;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.validate.UsageEventValidator;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.exception.DataAccessException;
import org.jooq.impl.DSL;

import java.time.LocalDate;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

import static dev.tokenmeter.db.jooq.Tables.USAGE_LEDGER;
import static dev.tokenmeter.db.jooq.Tables.USAGE_LEDGER_EVENT_ID;

/**
 * Writes usage events to the ledger, exactly once per event id.
 *
 * <p>One transaction per batch: the dedup guard rows ({@code usage_ledger_event_id}, primary key
 * event id alone) are inserted with {@code ON CONFLICT DO NOTHING RETURNING event_id}; ledger rows are
 * inserted only for the ids that came back, so an id already billed — even with another timestamp and
 * hence another monthly partition — is never billed twice; dead letters and the consumer positions are
 * written in the same transaction. The guard is written only together with the row it guards.
 */
final class LedgerWriter implements BatchWriter {

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(LedgerWriter.class);

    /** Rows per INSERT statement: 27 columns × 500 stays well under Postgres' 65,535 bind parameters. */
    private static final int ROWS_PER_STATEMENT = 500;

    /** Every ledger column but ingested_at, which the database stamps (an explicit NULL would violate NOT NULL). */
    static final List<org.jooq.Field<?>> WRITTEN_FIELDS = java.util.Arrays.stream(USAGE_LEDGER.fields())
            .filter(f -> !f.equals(USAGE_LEDGER.INGESTED_AT)).toList();

    private final DSLContext db;
    private final OffsetStore offsets;
    private final SinkMetrics metrics;
    private final Set<LocalDate> partitionsKnown = ConcurrentHashMap.newKeySet();

    LedgerWriter(DSLContext db, OffsetStore offsets, SinkMetrics metrics) {
        this.db = db;
        this.offsets = offsets;
        this.metrics = metrics;
    }

    @Override
    public void write(List<ConsumerRecord<byte[], byte[]>> records, Map<TopicPartition, Long> nextOffsets) {
        Map<String, UsageEvent> events = new LinkedHashMap<>();
        List<DeadLetter> dead = new ArrayList<>();
        int duplicatesInBatch = 0;
        for (ConsumerRecord<byte[], byte[]> record : records) {
            UsageEvent event;
            try {
                event = record.value() == null ? null : EventSerdes.usageEvent().decode(record.value());
            } catch (RuntimeException e) {
                dead.add(DeadLetter.of(record, "undecodable: " + e.getMessage()));
                continue;
            }
            List<String> problems = UsageEventValidator.problems(event);
            if (!problems.isEmpty()) {
                dead.add(DeadLetter.of(record, "invalid: " + String.join("; ", problems)));
            } else if (events.putIfAbsent(event.getEventId(), event) != null) {
                duplicatesInBatch++;
            }
        }
        ensurePartitions(events.values());
        int[] written = new int[1];
        List<DeadLetter> rejected = new ArrayList<>();
        db.transaction(cfg -> {
            DSLContext tx = DSL.using(cfg);
            try {
                // In a savepoint: after a failed statement Postgres refuses everything else in the
                // transaction, so the row-by-row fallback needs the batch's attempt rolled back first.
                written[0] = tx.transactionResult(batch -> insertNew(DSL.using(batch), new ArrayList<>(events.values())));
            } catch (DataAccessException e) {
                if (!isDataError(e)) {
                    throw e;
                }
                // One row broke a database rule: isolate it row by row, each in its own savepoint.
                log.warn("the database refused a row of a batch of {} ({}); writing the batch row by row",
                        events.size(), rootMessage(e));
                written[0] = insertOneByOne(tx, events.values(), records, rejected);
            }
            List<DeadLetter> all = new ArrayList<>(dead);
            all.addAll(rejected);
            DeadLetter.insert(tx, all);
            offsets.save(tx, nextOffsets);
        });
        metrics.ledgerRows.increment(written[0]);
        metrics.duplicates.increment(events.size() - written[0] + duplicatesInBatch - rejected.size());
        metrics.deadLetters.increment(dead.size() + rejected.size());
    }

    /** Inserts guard and ledger rows for the events not billed before; returns how many were new. */
    private int insertNew(DSLContext tx, List<UsageEvent> events) {
        int written = 0;
        for (int from = 0; from < events.size(); from += ROWS_PER_STATEMENT) {
            List<UsageEvent> chunk = events.subList(from, Math.min(events.size(), from + ROWS_PER_STATEMENT));
            var guard = tx.insertInto(USAGE_LEDGER_EVENT_ID, USAGE_LEDGER_EVENT_ID.EVENT_ID, USAGE_LEDGER_EVENT_ID.BILLING_MONTH);
            for (UsageEvent e : chunk) {
                guard = guard.values(UUID.fromString(e.getEventId()), LedgerRows.billingMonth(e.getOccurredAt()));
            }
            Set<UUID> fresh = new HashSet<>(guard.onConflictDoNothing().returningResult(USAGE_LEDGER_EVENT_ID.EVENT_ID)
                    .fetch(USAGE_LEDGER_EVENT_ID.EVENT_ID));
            if (fresh.isEmpty()) {
                continue;
            }
            List<UsageLedgerRecord> rows = new ArrayList<>(fresh.size());
            for (UsageEvent e : chunk) {
                if (fresh.contains(UUID.fromString(e.getEventId()))) {
                    rows.add(LedgerRows.toRecord(e));
                }
            }
            var insert = tx.insertInto(USAGE_LEDGER, WRITTEN_FIELDS);
            for (UsageLedgerRecord r : rows) {
                Object[] values = new Object[WRITTEN_FIELDS.size()];
                for (int i = 0; i < values.length; i++) {
                    values[i] = r.get(WRITTEN_FIELDS.get(i));
                }
                insert = insert.values(values);
            }
            insert.execute();
            written += rows.size();
        }
        return written;
    }

    private int insertOneByOne(DSLContext tx, Iterable<UsageEvent> events, List<ConsumerRecord<byte[], byte[]>> records,
                               List<DeadLetter> rejected) {
        int written = 0;
        for (UsageEvent e : events) {
            try {
                written += tx.transactionResult(nested -> insertNew(DSL.using(nested), List.of(e)));
            } catch (DataAccessException error) {
                if (!isDataError(error)) {
                    throw error;
                }
                records.stream().filter(r -> r.value() != null).filter(r -> {
                    try {
                        return EventSerdes.usageEvent().decode(r.value()).getEventId().equals(e.getEventId());
                    } catch (RuntimeException undecodable) {
                        return false;
                    }
                }).findFirst().ifPresent(r -> rejected.add(DeadLetter.of(r, "rejected by the database: " + rootMessage(error))));
            }
        }
        return written;
    }

    private void ensurePartitions(Iterable<UsageEvent> events) {
        Set<LocalDate> months = new HashSet<>();
        events.forEach(e -> months.add(LedgerRows.billingMonth(e.getOccurredAt())));
        for (LocalDate month : months) {
            if (!partitionsKnown.contains(month)) {
                db.select(DSL.field("ensure_usage_ledger_partition({0})", String.class, DSL.val(month))).fetch();
                partitionsKnown.add(month);
            }
        }
    }

    /** SQLSTATE class 22 (data exception) or 23 (integrity constraint violation): the row, not the database. */
    static boolean isDataError(DataAccessException e) {
        String state = e.sqlState();
        return state != null && (state.startsWith("22") || state.startsWith("23"));
    }

    private static String rootMessage(Throwable t) {
        while (t.getCause() != null) {
            t = t.getCause();
        }
        return String.valueOf(t.getMessage());
    }
}
