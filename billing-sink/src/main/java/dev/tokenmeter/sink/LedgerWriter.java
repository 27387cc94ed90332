package dev.tokenmeter.sink;

import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.validate.UsageEventValidator;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.CommonTableExpression;
import org.jooq.DSLContext;
import org.jooq.Field;
import org.jooq.impl.DSL;
import org.jooq.impl.SQLDataType;

import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

import static dev.tokenmeter.db.jooq.Tables.USAGE_LEDGER_EVENT_ID;

/**
 * Writes usage events to the ledger, exactly once per event id.
 *
 * <p>One transaction per batch: the dedup guard rows ({@code usage_ledger_event_id}, primary key
 * event id alone) are inserted in one statement with {@code ON CONFLICT DO NOTHING RETURNING event_id};
 * the ledger rows of the ids that came back, and only those, follow with a binary {@code COPY}
 * ({@link LedgerCopy}), so an id already billed — even with another timestamp and hence another monthly
 * partition — is never billed twice; dead letters and the consumer positions are written in the same
 * transaction. The guard is written only together with the row it guards (ADR 0030). A row the database
 * refuses for good is set aside to {@code sink_dead_letter} with the reason ({@link Refusals}, ADR 0055).
 */
final class LedgerWriter implements BatchWriter {

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
        Map<String, ConsumerRecord<byte[], byte[]>> recordOf = new HashMap<>();
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
            } else {
                recordOf.put(event.getEventId(), record);
            }
        }
        ensurePartitions(events.values());
        int[] written = new int[1];
        List<DeadLetter> rejected = new ArrayList<>();
        db.transaction(cfg -> {
            DSLContext tx = DSL.using(cfg);
            // A row the database refuses (a nul character in a string, say) is set aside, not the batch.
            written[0] = Refusals.writeSettingAside(tx, new ArrayList<>(events.values()), LedgerWriter::insertNew,
                    (e, reason) -> rejected.add(DeadLetter.of(recordOf.get(e.getEventId()), reason)));
            List<DeadLetter> all = new ArrayList<>(dead);
            all.addAll(rejected);
            DeadLetter.insert(tx, all);
            offsets.save(tx, nextOffsets);
        });
        metrics.ledgerRows.increment(written[0]);
        metrics.duplicates.increment(events.size() - written[0] + duplicatesInBatch - rejected.size());
        metrics.refusedRows.increment(rejected.size());
        metrics.deadLetters.increment(dead.size() + rejected.size());
    }

    /**
     * Inserts the guard rows of the events in one statement and COPYs the ledger rows of those whose
     * guard was new; returns how many were new. Both run in the caller's transaction, so a guard never
     * commits without its row.
     */
    private static int insertNew(DSLContext tx, List<UsageEvent> events) {
        // In the order of the guard's primary key (Postgres compares uuids as unsigned bytes): consecutive
        // index inserts land on neighbouring pages.
        List<Keyed> batch = new ArrayList<>(events.size());
        for (UsageEvent e : events) {
            batch.add(new Keyed(UUID.fromString(e.getEventId()), e));
        }
        batch.sort(Keyed.BY_ID);
        UUID[] ids = new UUID[batch.size()];
        LocalDate[] months = new LocalDate[batch.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = batch.get(i).id();
            months[i] = LedgerRows.billingMonth(batch.get(i).event().getOccurredAt());
        }
        Set<UUID> billedBefore = insertGuards(tx, ids, months);
        if (billedBefore.size() == ids.length) {
            return 0;
        }
        LedgerCopy.Rows rows = new LedgerCopy.Rows(ids.length - billedBefore.size());
        for (Keyed k : batch) {
            if (!billedBefore.contains(k.id())) {
                rows.add(k.event());
            }
        }
        // COPY is not SQL jOOQ can build: pgjdbc's CopyManager on the transaction's own connection (ADR 0030).
        tx.connection(rows::copyInto);
        return rows.count();
    }

    /**
     * {@code WITH batch AS (unnest of the two arrays), inserted AS (INSERT the guard rows ON CONFLICT DO
     * NOTHING RETURNING event_id) SELECT} the batch's ids that were not inserted: those billed before.
     * Usually there are none, so nothing comes back, where returning the fresh ids would send (and jOOQ
     * materialise) every id of the batch.
     */
    private static Set<UUID> insertGuards(DSLContext tx, UUID[] ids, LocalDate[] months) {
        Field<UUID> batchId = DSL.field(DSL.name("batch", USAGE_LEDGER_EVENT_ID.EVENT_ID.getName()), SQLDataType.UUID);
        Field<LocalDate> batchMonth = DSL.field(DSL.name("batch", USAGE_LEDGER_EVENT_ID.BILLING_MONTH.getName()), SQLDataType.LOCALDATE);
        Field<UUID> insertedId = DSL.field(DSL.name("inserted", USAGE_LEDGER_EVENT_ID.EVENT_ID.getName()), SQLDataType.UUID);
        CommonTableExpression<?> batch = DSL.name("batch").as(DSL.selectFrom(DSL.table("unnest({0}, {1})", DSL.val(ids),
                DSL.val(months)).as("u", batchId.getName(), batchMonth.getName())));
        CommonTableExpression<?> inserted = DSL.name("inserted").fields(insertedId.getName())
                .as(DSL.insertInto(USAGE_LEDGER_EVENT_ID, USAGE_LEDGER_EVENT_ID.EVENT_ID, USAGE_LEDGER_EVENT_ID.BILLING_MONTH)
                        .select(DSL.select(batchId, batchMonth).from(batch))
                        .onConflictDoNothing()
                        .returningResult(USAGE_LEDGER_EVENT_ID.EVENT_ID));
        return tx.with(batch).with(inserted)
                .select(batchId).from(batch)
                .whereNotExists(DSL.selectOne().from(inserted).where(insertedId.eq(batchId)))
                .fetchSet(batchId);
    }

    private record Keyed(UUID id, UsageEvent event) {
        static final Comparator<Keyed> BY_ID = (a, b) -> a.id().getMostSignificantBits() != b.id().getMostSignificantBits()
                ? Long.compareUnsigned(a.id().getMostSignificantBits(), b.id().getMostSignificantBits())
                : Long.compareUnsigned(a.id().getLeastSignificantBits(), b.id().getLeastSignificantBits());
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
}
