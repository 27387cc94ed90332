package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.validate.UsageEventValidator;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

import java.time.Instant;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Dedup, hourly and monthly totals, late-event routing and credit alerts for the users of one task.
 *
 * <p>Per event, in one exactly-once transaction: the event id is checked and remembered; the hour and
 * month totals it belongs to are updated (revision + 1) and marked dirty; an event past its hour's
 * grace is still counted and also forwarded to the late topic; the user's monthly cost on the service's
 * credit is updated and 50/80/100% alerts raised once each. A wall-clock punctuator emits the latest
 * value of every dirty total, emits final totals for periods whose grace has passed (in stream time),
 * and expires old event ids. Emitting from the dirty store instead of on every update keeps output
 * volume at one record per total per interval; because the dirty marker is itself a store entry, a
 * crash can never lose an emission whose state change was committed.
 */
final class UsageAggregationProcessor implements Processor<String, byte[], String, Object> {

    private static final int[] THRESHOLDS = {50, 80, 100};
    private static final int LAG_SAMPLE_EVERY = 64;
    private static final int RECENT_TOTALS = 20_000;
    private static final int EXPIRY_BATCH = 10_000;

    private final AggregatorConfig config;
    private final AggregatorMetrics metrics;
    private ProcessorContext<String, Object> context;
    private KeyValueStore<String, Long> dedup;
    private KeyValueStore<String, String> dedupExpiry;
    private KeyValueStore<String, UsageTotal> totals;
    private KeyValueStore<String, String> dirty;
    private KeyValueStore<String, String> open;
    private KeyValueStore<String, Long> userMonthCost;
    private KeyValueStore<String, Long> alertsRaised;
    private KeyValueStore<String, Long> limits;
    private long processed;
    /**
     * Decoded copies of recently used totals, written through to the store: saves an Avro decode per
     * read. Cleared whenever the task is (re)initialised, so it never outlives the store it mirrors.
     */
    private final Map<String, UsageTotal> recent = new LinkedHashMap<>(1024, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, UsageTotal> eldest) {
            return size() > RECENT_TOTALS;
        }
    };

    UsageAggregationProcessor(AggregatorConfig config, AggregatorMetrics metrics) {
        this.config = config;
        this.metrics = metrics;
    }

    @Override
    public void init(ProcessorContext<String, Object> context) {
        this.context = context;
        recent.clear();
        dedup = context.getStateStore(UsageAggregationTopology.STORE_DEDUP);
        dedupExpiry = context.getStateStore(UsageAggregationTopology.STORE_DEDUP_EXPIRY);
        totals = context.getStateStore(UsageAggregationTopology.STORE_TOTALS);
        dirty = context.getStateStore(UsageAggregationTopology.STORE_DIRTY);
        open = context.getStateStore(UsageAggregationTopology.STORE_OPEN);
        userMonthCost = context.getStateStore(UsageAggregationTopology.STORE_USER_MONTH);
        alertsRaised = context.getStateStore(UsageAggregationTopology.STORE_ALERTS);
        limits = context.getStateStore(UsageAggregationTopology.STORE_LIMITS);
        context.schedule(config.emitInterval(), PunctuationType.WALL_CLOCK_TIME, now -> {
            emitDirty();
            closePeriods(context.currentStreamTimeMs());
            expireEventIds(context.currentStreamTimeMs());
        });
    }

    @Override
    public void process(Record<String, byte[]> record) {
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
        if (dedup.get(event.getEventId()) != null) {
            metrics.duplicatesDropped.increment();
            return;
        }
        long streamTime = Math.max(context.currentStreamTimeMs(), record.timestamp());
        dedup.put(event.getEventId(), streamTime);
        dedupExpiry.put(expiryKey(streamTime, event.getEventId()), event.getEventId());

        Instant occurred = event.getOccurredAt();
        YearMonth month = Periods.month(occurred);
        long hourStart = Periods.hourStart(occurred);
        add(event, Granularity.HOUR, hourStart, hourStart + 3_600_000L, config.hourGrace().toMillis());
        add(event, Granularity.MONTH, Periods.monthStart(month), Periods.monthEnd(month), config.monthGrace().toMillis());

        if (hourStart + 3_600_000L + config.hourGrace().toMillis() <= streamTime) {
            metrics.lateEvents.increment();
            context.forward(new Record<String, Object>(record.key(), record.value(), record.timestamp(), record.headers()),
                    UsageAggregationTopology.SINK_LATE);
        }
        if (event.getKeySource() == KeySource.SERVICE_CREDIT && event.getCostNanoUsd() > 0) {
            String userMonth = event.getUserId() + "|" + month;
            Long before = userMonthCost.get(userMonth);
            long cost = Money.add(before == null ? 0 : before, event.getCostNanoUsd());
            userMonthCost.put(userMonth, cost);
            raiseAlerts(event, month, cost);
        }
        if (++processed % LAG_SAMPLE_EVERY == 0) {
            metrics.endToEndLagMs.record(Math.max(0, System.currentTimeMillis() - event.getReceivedAt().toEpochMilli()));
        }
    }

    private void add(UsageEvent e, Granularity granularity, long start, long end, long graceMs) {
        String key = totalKey(e.getUserId(), e.getModel(), e.getKeySource(), granularity, start);
        UsageTotal t = total(key);
        if (t == null) {
            t = UsageTotal.newBuilder()
                    .setUserId(e.getUserId()).setTenantId(e.getTenantId()).setModel(e.getModel())
                    .setKeySource(e.getKeySource()).setGranularity(granularity)
                    .setPeriodStart(Instant.ofEpochMilli(start)).setPeriodEnd(Instant.ofEpochMilli(end))
                    .build();
            open.put(expiryKey(end + graceMs, key), key);
        }
        t.setEventCount(t.getEventCount() + 1);
        switch (e.getOutcome()) {
            case SUCCEEDED -> t.setSucceededCount(t.getSucceededCount() + 1);
            case FAILED -> t.setFailedCount(t.getFailedCount() + 1);
            case CANCELLED -> t.setCancelledCount(t.getCancelledCount() + 1);
            case REJECTED -> t.setRejectedCount(t.getRejectedCount() + 1);
        }
        t.setPromptTokens(Math.addExact(t.getPromptTokens(), e.getPromptTokens()));
        t.setCachedPromptTokens(Math.addExact(t.getCachedPromptTokens(), e.getCachedPromptTokens()));
        t.setCompletionTokens(Math.addExact(t.getCompletionTokens(), e.getCompletionTokens()));
        t.setReasoningTokens(Math.addExact(t.getReasoningTokens(), e.getReasoningTokens()));
        t.setCostNanoUsd(Money.add(t.getCostNanoUsd(), e.getCostNanoUsd()));
        Instant at = e.getOccurredAt();
        if (t.getFirstEventAt() == null || at.isBefore(t.getFirstEventAt())) {
            t.setFirstEventAt(at);
        }
        if (t.getLastEventAt() == null || at.isAfter(t.getLastEventAt())) {
            t.setLastEventAt(at);
        }
        t.setRevision(t.getRevision() + 1);
        putTotal(key, t);
        dirty.put(key, "");
    }

    private void raiseAlerts(UsageEvent e, YearMonth month, long cost) {
        Long credit = limits.get(e.getUserId());
        if (credit == null || credit <= 0) {
            return;
        }
        for (int threshold : THRESHOLDS) {
            String alertId = e.getUserId() + "|" + month + "|" + threshold;
            // cost / credit >= threshold%, in exact integers.
            if (Math.multiplyExact(cost, 100L) >= Math.multiplyExact(credit, (long) threshold)
                    && alertsRaised.get(alertId) == null) {
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

    /** Emits the latest value of every total changed since the last emission. */
    private void emitDirty() {
        List<String> keys = new ArrayList<>();
        try (KeyValueIterator<String, String> it = dirty.all()) {
            while (it.hasNext()) {
                keys.add(it.next().key);
            }
        }
        for (String key : keys) {
            UsageTotal t = total(key);
            if (t != null) {
                String sink = t.getGranularity() == Granularity.HOUR ? UsageAggregationTopology.SINK_HOURLY
                        : UsageAggregationTopology.SINK_MONTHLY;
                context.forward(new Record<String, Object>(key, t, t.getPeriodStart().toEpochMilli()), sink);
                if (t.getIsFinal()) {
                    // A correction of a period already closed: finance books it as an adjustment.
                    context.forward(new Record<String, Object>(key, t, t.getPeriodStart().toEpochMilli()),
                            UsageAggregationTopology.SINK_FINAL);
                }
            }
            dirty.delete(key);
        }
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
            UsageTotal t = total(entry.value);
            if (t != null) {
                t.setIsFinal(true);
                putTotal(entry.value, t);
                dirty.delete(entry.value);
                String sink = t.getGranularity() == Granularity.HOUR ? UsageAggregationTopology.SINK_HOURLY
                        : UsageAggregationTopology.SINK_MONTHLY;
                context.forward(new Record<String, Object>(entry.value, t, t.getPeriodStart().toEpochMilli()), sink);
                context.forward(new Record<String, Object>(entry.value, t, t.getPeriodStart().toEpochMilli()),
                        UsageAggregationTopology.SINK_FINAL);
            }
            open.delete(entry.key);
        }
    }

    /** Forgets event ids older than the dedup retention, a bounded batch per punctuation. */
    private void expireEventIds(long streamTime) {
        long cutoff = streamTime - config.dedupRetention().toMillis();
        if (cutoff <= 0) {
            return;
        }
        List<KeyValue<String, String>> expired = new ArrayList<>();
        try (KeyValueIterator<String, String> it = dedupExpiry.range(expiryKey(0, ""), expiryKey(cutoff, ""))) {
            while (it.hasNext() && expired.size() < EXPIRY_BATCH) {
                expired.add(it.next());
            }
        }
        for (KeyValue<String, String> entry : expired) {
            dedup.delete(entry.value);
            dedupExpiry.delete(entry.key);
        }
    }

    private UsageTotal total(String key) {
        UsageTotal t = recent.get(key);
        if (t == null) {
            t = totals.get(key);
            if (t != null) {
                recent.put(key, t);
            }
        }
        return t;
    }

    private void putTotal(String key, UsageTotal t) {
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
        return String.format("%015d|%s", Math.max(0, epochMs), suffix);
    }
}
