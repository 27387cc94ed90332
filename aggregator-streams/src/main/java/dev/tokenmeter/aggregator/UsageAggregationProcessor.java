package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.UserLimit;
import dev.tokenmeter.events.alert.UsageAlertIds;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.validate.UsageEventValidator;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

import java.time.Instant;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Dedup, hourly and monthly totals, late-event routing, user limits and credit alerts for the users of
 * one task.
 *
 * <p>Per event, in one exactly-once transaction: the event id is checked and remembered; the hour and
 * month totals it belongs to are updated (revision + 1); an event past its hour's grace is still counted
 * and also forwarded to the late topic; the user's monthly cost on the service's credit is updated and
 * 50/80/100% alerts raised once each. A wall-clock punctuator emits the latest value of every total
 * changed since the last emission, emits final totals for periods whose grace has passed (in stream
 * time), and expires old event ids.
 *
 * <p>Which totals changed since the last emission is kept in memory, not in a store: after a restart
 * every still-open period is simply marked changed and emitted again. That is safe because a total
 * carries its revision and every consumer keeps the highest one, so a re-emission of an unchanged total
 * changes nothing, while a committed change can never miss its emission. A change to a period already
 * closed (a late event after the final total) is emitted at once, in the same transaction, as a
 * correction on the final topic. User limits arrive on the co-partitioned compacted topic through this
 * same processor and are mirrored in memory, so the per-event credit check never touches RocksDB.
 */
final class UsageAggregationProcessor implements Processor<String, byte[], String, Object> {

    private static final int[] THRESHOLDS = {50, 80, 100};
    private static final int LAG_SAMPLE_EVERY = 64;
    private static final int RECENT_TOTALS = 20_000;
    private static final int EXPIRY_BATCH = 10_000;
    private static final String CLEARED_FOR = "cleared-for-generation";
    /**
     * Prefix of the {@code totals-open} entries that schedule a final total's removal ({@code f|<expiryKey>}, value
     * the total's key): they sort after every open-period entry (digits), so the two ranges never meet (ADR 0091).
     */
    static final String FORGET = "f|";
    /** The dedup-state entry holding {@link #eventTime} as of the last punctuation. */
    private static final String EVENT_TIME = "event-time";

    private final AggregatorConfig config;
    private final AggregatorMetrics metrics;
    private final String limitsTopic;
    private final long hourGraceMs;
    private final long monthGraceMs;
    private final long generationMs;
    private final long closedRetentionMs;
    /**
     * The newest usage-event timestamp of this task: the clock of closed-total removal. Not Kafka Streams' stream
     * time, which the user-limits topic (stamped when a limit changes) also moves: a limit published now while old
     * events are still being read must not make them too late. Persisted in each punctuation before anything is
     * removed by it, so after a restart it is at least the time every removal used.
     */
    private long eventTime = -1;
    private long persistedEventTime = -1;
    private ProcessorContext<String, Object> context;
    /** Event ids by generation of stream time (DEDUP_RETENTION long), three slots used in rotation. */
    @SuppressWarnings("unchecked")
    private final KeyValueStore<String, Long>[] dedup = new KeyValueStore[UsageAggregationTopology.DEDUP_SLOTS];
    private KeyValueStore<String, Long> dedupState;
    /** Where clearing of the oldest slot stopped last time (only ever a speed-up: restarts from the start). */
    private String clearCursor;
    private long clearCursorGeneration = -1;
    private KeyValueStore<String, RunningTotal> totals;
    private KeyValueStore<String, String> open;
    private KeyValueStore<String, Long> userMonthCost;
    private KeyValueStore<String, Long> alertsRaised;
    private KeyValueStore<String, Long> limitStore;
    private long processed;
    private final Rollups rollups;
    /** Totals changed since the last emission, in change order. */
    private final Set<String> changed = new LinkedHashSet<>();
    /** Each user's monthly credit, mirrored from the limits store (one entry per user of this task). */
    private final Map<String, Long> limits = new HashMap<>();
    /**
     * Recently used totals, written through to the store on every change: saves a decode per read.
     * Cleared whenever the task is (re)initialised, so it never outlives the store it mirrors.
     */
    private final Map<String, RunningTotal> recent = new LinkedHashMap<>(1024, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, RunningTotal> eldest) {
            return size() > RECENT_TOTALS;
        }
    };

    UsageAggregationProcessor(AggregatorConfig config, AggregatorMetrics metrics, String limitsTopic) {
        this.config = config;
        this.metrics = metrics;
        this.limitsTopic = limitsTopic;
        this.hourGraceMs = config.hourGrace().toMillis();
        this.monthGraceMs = config.monthGrace().toMillis();
        this.generationMs = config.dedupRetention().toMillis();
        this.closedRetentionMs = config.closedTotalsRetention().toMillis();
        this.rollups = new Rollups(config.rollupDimensions(), config.rollupMaxValuesPerUser());
    }

    @Override
    public void init(ProcessorContext<String, Object> context) {
        this.context = context;
        recent.clear();
        changed.clear();
        limits.clear();
        for (int slot = 0; slot < UsageAggregationTopology.DEDUP_SLOTS; slot++) {
            dedup[slot] = context.getStateStore(UsageAggregationTopology.dedupStore(slot));
        }
        dedupState = context.getStateStore(UsageAggregationTopology.STORE_DEDUP_STATE);
        clearCursor = null;
        clearCursorGeneration = -1;
        Long storedEventTime = dedupState.get(EVENT_TIME);
        eventTime = storedEventTime == null ? -1 : storedEventTime;
        persistedEventTime = eventTime;
        totals = context.getStateStore(UsageAggregationTopology.STORE_TOTALS);
        open = context.getStateStore(UsageAggregationTopology.STORE_OPEN);
        userMonthCost = context.getStateStore(UsageAggregationTopology.STORE_USER_MONTH);
        alertsRaised = context.getStateStore(UsageAggregationTopology.STORE_ALERTS);
        limitStore = context.getStateStore(UsageAggregationTopology.STORE_LIMITS);
        rollups.init(context);
        try (KeyValueIterator<String, Long> it = limitStore.all()) {
            it.forEachRemaining(kv -> limits.put(kv.key, kv.value));
        }
        // Whatever was committed but perhaps not yet emitted before a restart is emitted again.
        try (KeyValueIterator<String, String> it = open.all()) {
            it.forEachRemaining(kv -> {
                if (!kv.key.startsWith(FORGET)) {
                    changed.add(kv.value);
                }
            });
        }
        context.schedule(config.emitInterval(), PunctuationType.WALL_CLOCK_TIME, now -> {
            emitChanged();
            closePeriods(context.currentStreamTimeMs());
            forgetClosedTotals();
            forgetOldEventIds(context.currentStreamTimeMs());
        });
    }

    @Override
    public void process(Record<String, byte[]> record) {
        if (limitsTopic.equals(context.recordMetadata().map(RecordMetadata::topic).orElse(null))) {
            updateLimit(record);
            return;
        }
        metrics.eventsIn.increment();
        UsageEvent event;
        try {
            event = record.value() == null ? null : EventSerdes.usageEvent().decode(record.value());
        } catch (RuntimeException e) {
            deadLetter(record, "undecodable: " + e.getMessage());
            return;
        }
        List<String> problems = UsageEventValidator.problems(event);
        if (!problems.isEmpty()) {
            deadLetter(record, "invalid: " + String.join("; ", problems));
            return;
        }
        long streamTime = Math.max(context.currentStreamTimeMs(), record.timestamp());
        long generation = Math.floorDiv(streamTime, generationMs);
        KeyValueStore<String, Long> current = dedup[slot(generation)];
        if (current.get(event.getEventId()) != null || dedup[slot(generation - 1)].get(event.getEventId()) != null) {
            metrics.duplicatesDropped.increment();
            return;
        }
        Instant occurred = event.getOccurredAt();
        YearMonth month = Periods.month(occurred);
        long hourStart = Periods.hourStart(occurred);
        eventTime = Math.max(eventTime, record.timestamp());
        if (hourStart + 3_600_000L + hourGraceMs + closedRetentionMs <= eventTime) {
            // Its hour closed longer than CLOSED_TOTALS_RETENTION ago: that total is (or is about to be) forgotten, so
            // the event cannot be added to it without starting it again from zero. Set aside whole, by the event
            // clock alone (a redo decides the same); the ledger still bills it, the reconciliation shows it (ADR 0091).
            metrics.tooLateForTotals.increment();
            deadLetter(record, "too late for the totals: its hour " + Instant.ofEpochMilli(hourStart) + " closed more than"
                    + " CLOSED_TOTALS_RETENTION (" + config.closedTotalsRetention() + ") before the newest event time "
                    + Instant.ofEpochMilli(eventTime) + "; billed in the ledger only");
            return;
        }
        String hourKey = totalKey(event.getUserId(), event.getModel(), event.getKeySource(), Granularity.HOUR, hourStart);
        String monthKey = totalKey(event.getUserId(), event.getModel(), event.getKeySource(), Granularity.MONTH,
                Periods.monthStart(month));
        // Every sum the event changes is checked before anything is stored: an event that would overflow one
        // throws here, leaves no trace (not even its id), and ProcessingFailures sends it to the DLQ (issue 14).
        RunningTotal hour = total(hourKey);
        RunningTotal monthTotal = total(monthKey);
        if (hour != null) {
            hour.requireRoomFor(event);
        }
        if (monthTotal != null) {
            monthTotal.requireRoomFor(event);
        }
        String userMonth = null;
        long creditCost = 0;
        if (event.getKeySource() == KeySource.SERVICE_CREDIT && event.getCostNanoUsd() > 0) {
            userMonth = event.getUserId() + "|" + month;
            Long before = userMonthCost.get(userMonth);
            if (before != null && before > Long.MAX_VALUE - event.getCostNanoUsd()) {
                throw new ArithmeticException("the credit cost of user " + event.getUserId() + " in " + month
                        + " would overflow costNanoUsd (" + before + " + " + event.getCostNanoUsd() + ")");
            }
            creditCost = (before == null ? 0 : before) + event.getCostNanoUsd();
        }
        // Attribution rollups (ADR 0078): computed and checked here too, stored below with the marker.
        Rollups.Pending rolled = rollups.enabled() ? rollups.prepare(event) : null;

        current.put(event.getEventId(), streamTime);
        add(event, hourKey, hour, Granularity.HOUR, hourStart, hourStart + 3_600_000L, hourGraceMs);
        add(event, monthKey, monthTotal, Granularity.MONTH, Periods.monthStart(month), Periods.monthEnd(month), monthGraceMs);

        if (rolled != null) {
            rollups.apply(rolled, context, record.timestamp());
        }

        if (hourStart + 3_600_000L + hourGraceMs <= streamTime) {
            metrics.lateEvents.increment();
            context.forward(new Record<String, Object>(record.key(), record.value(), record.timestamp(), record.headers()),
                    UsageAggregationTopology.SINK_LATE);
        }
        if (userMonth != null) {
            userMonthCost.put(userMonth, creditCost);
            raiseAlerts(event, month, creditCost);
        }
        if (++processed % LAG_SAMPLE_EVERY == 0) {
            metrics.endToEndLagMs.record(Math.max(0, System.currentTimeMillis() - event.getReceivedAt().toEpochMilli()));
        }
    }

    private void updateLimit(Record<String, byte[]> record) {
        if (record.key() == null) {
            deadLetter(record, "user limit without a key");
            return;
        }
        if (record.value() == null) {
            limitStore.delete(record.key());
            limits.remove(record.key());
            return;
        }
        UserLimit limit;
        try {
            limit = EventSerdes.userLimit().decode(record.value());
        } catch (RuntimeException e) {
            deadLetter(record, "cannot decode UserLimit: " + e.getMessage());
            return;
        }
        limitStore.put(record.key(), limit.getMonthlyCreditNanoUsd());
        limits.put(record.key(), limit.getMonthlyCreditNanoUsd());
    }

    private void add(UsageEvent e, String key, RunningTotal t, Granularity granularity, long start, long end, long graceMs) {
        if (t == null) {
            t = new RunningTotal(e.getUserId(), e.getTenantId(), e.getModel(), e.getKeySource(), granularity, start, end);
            open.put(expiryKey(end + graceMs, key), key);
        }
        t.add(e);
        putTotal(key, t);
        if (t.isFinal) {
            // A correction of a period already closed: emitted now, in this transaction; finance books
            // it as an adjustment.
            forward(key, t);
        } else {
            changed.add(key);
        }
    }

    private void raiseAlerts(UsageEvent e, YearMonth month, long cost) {
        Long credit = limits.get(e.getUserId());
        if (credit == null || credit <= 0) {
            return;
        }
        for (int threshold : THRESHOLDS) {
            if (!reached(cost, credit, threshold)) {
                break;
            }
            String alertId = UsageAlertIds.of(e.getUserId(), month, threshold);
            if (alertsRaised.get(alertId) == null) {
                alertsRaised.put(alertId, cost);
                metrics.alertsRaised.increment();
                UsageAlert alert = UsageAlert.newBuilder()
                        .setAlertId(alertId).setUserId(e.getUserId()).setTenantId(e.getTenantId())
                        .setBillingMonth(month.toString()).setThresholdPercent(threshold)
                        .setCostNanoUsd(cost).setCreditNanoUsd(credit)
                        .setCrossedAt(e.getOccurredAt()).setTriggeringEventId(e.getEventId())
                        .build();
                context.forward(new Record<String, Object>(e.getUserId(), alert, e.getOccurredAt().toEpochMilli()),
                        UsageAggregationTopology.SINK_ALERTS);
            }
        }
    }

    /**
     * cost / credit >= percent / 100, exactly: cost * 100 >= credit * percent compared as 128-bit products
     * (a cost of more than 92 million USD times 100 does not fit in a long; both are non-negative here).
     */
    static boolean reached(long cost, long credit, int percent) {
        long highCost = Math.multiplyHigh(cost, 100L);
        long highCredit = Math.multiplyHigh(credit, percent);
        if (highCost != highCredit) {
            return highCost > highCredit;
        }
        return Long.compareUnsigned(cost * 100L, credit * percent) >= 0;
    }

    /** Emits the latest value of every total changed since the last emission. */
    private void emitChanged() {
        for (String key : changed) {
            RunningTotal t = total(key);
            if (t != null) {
                forward(key, t);
            }
        }
        changed.clear();
    }

    /** Emits the final total of every period whose end plus grace has passed in stream time. */
    private void closePeriods(long streamTime) {
        List<KeyValue<String, String>> due = new ArrayList<>();
        try (KeyValueIterator<String, String> it = open.range(expiryKey(0, ""), expiryKey(streamTime, "\uffff"))) {
            while (it.hasNext()) {
                due.add(it.next());
            }
        }
        for (KeyValue<String, String> entry : due) {
            RunningTotal t = total(entry.value);
            if (t != null) {
                t.isFinal = true;
                putTotal(entry.value, t);
                changed.remove(entry.value);
                forward(entry.value, t);
                long closedAt = Long.parseLong(entry.key.substring(0, entry.key.indexOf('|')));
                open.put(FORGET + expiryKey(closedAt + closedRetentionMs, entry.value), entry.value);
            }
            open.delete(entry.key);
        }
    }

    /**
     * Removes final totals CLOSED_TOTALS_RETENTION after they closed, a bounded batch per punctuation, so the state
     * holds the totals of the retention window, not every hour ever (ADR 0091). Events for those periods are set
     * aside in {@link #process} by the same arithmetic, so a removed total is never started again.
     */
    private void forgetClosedTotals() {
        if (eventTime < 0) {
            return;
        }
        if (eventTime != persistedEventTime) {
            dedupState.put(EVENT_TIME, eventTime);
            persistedEventTime = eventTime;
        }
        List<KeyValue<String, String>> due = new ArrayList<>();
        try (KeyValueIterator<String, String> it = open.range(FORGET + expiryKey(0, ""), FORGET + expiryKey(eventTime, "\uffff"))) {
            while (it.hasNext() && due.size() < EXPIRY_BATCH) {
                due.add(it.next());
            }
        }
        for (KeyValue<String, String> entry : due) {
            totals.delete(entry.value);
            recent.remove(entry.value);
            changed.remove(entry.value);
            open.delete(entry.key);
        }
        metrics.totalsForgotten.increment(due.size());
    }

    /** The total on its granularity's running topic and, once final, on the final topic too. */
    private void forward(String key, RunningTotal t) {
        UsageTotal avro = t.toAvro();
        String sink = t.granularity == Granularity.HOUR ? UsageAggregationTopology.SINK_HOURLY
                : UsageAggregationTopology.SINK_MONTHLY;
        context.forward(new Record<String, Object>(key, avro, t.periodStart), sink);
        if (t.isFinal) {
            context.forward(new Record<String, Object>(key, avro, t.periodStart), UsageAggregationTopology.SINK_FINAL);
        }
    }

    /**
     * Forgets event ids at least one retention old, a bounded batch per punctuation. Ids are written to
     * the slot of the current generation ({@code floor(streamTime / DEDUP_RETENTION)}) and looked up in
     * the current and the previous one, so an id is remembered for at least one retention and at most
     * two. During generation g the slot of g + 1 — last written in generation g - 2 or earlier, so every
     * id in it is at least one retention old — is emptied before it becomes current. One delete per id,
     * and no per-event expiry index: the write path is a single put.
     */
    private void forgetOldEventIds(long streamTime) {
        long generation = Math.floorDiv(streamTime, generationMs);
        Long clearedFor = dedupState.get(CLEARED_FOR);
        if (clearedFor != null && clearedFor >= generation) {
            return;
        }
        if (clearCursorGeneration != generation) {
            clearCursor = null;
            clearCursorGeneration = generation;
        }
        KeyValueStore<String, Long> oldest = dedup[slot(generation + 1)];
        List<String> batch = new ArrayList<>();
        boolean exhausted;
        try (KeyValueIterator<String, Long> it = clearCursor == null ? oldest.all() : oldest.range(clearCursor, null)) {
            while (it.hasNext() && batch.size() < EXPIRY_BATCH) {
                batch.add(it.next().key);
            }
            exhausted = !it.hasNext();
        }
        batch.forEach(oldest::delete);
        if (exhausted) {
            dedupState.put(CLEARED_FOR, generation);
            clearCursor = null;
        } else {
            clearCursor = batch.get(batch.size() - 1);
        }
    }

    private static int slot(long generation) {
        return Math.floorMod(generation, UsageAggregationTopology.DEDUP_SLOTS);
    }

    private RunningTotal total(String key) {
        RunningTotal t = recent.get(key);
        if (t == null) {
            t = totals.get(key);
            if (t != null) {
                recent.put(key, t);
            }
        }
        return t;
    }

    private void putTotal(String key, RunningTotal t) {
        totals.put(key, t);
        recent.put(key, t);
    }

    private void deadLetter(Record<String, byte[]> record, String reason) {
        metrics.deadLettered.increment();
        DeadLetters.send(context, record, reason);
    }

    /** {@code userId|model|keySource|HOUR|periodStartEpochMs}: the key of every totals topic. */
    static String totalKey(String userId, String model, KeySource source, Granularity granularity, long periodStartMs) {
        return userId + "|" + model + "|" + source + "|" + granularity + "|" + periodStartMs;
    }

    /** Keys that sort by time in RocksDB's byte order: 15-digit zero-padded epoch ms. */
    static String expiryKey(long epochMs, String suffix) {
        String digits = Long.toString(Math.max(0, epochMs));
        StringBuilder sb = new StringBuilder(16 + suffix.length());
        for (int i = digits.length(); i < 15; i++) {
            sb.append('0');
        }
        return sb.append(digits).append('|').append(suffix).toString();
    }
}
