package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * The aggregation topology, separate from {@code main} so tests drive the production topology.
 *
 * <p>Reads {@code usage-events} (key user id, value UsageEvent bytes) and {@code user-limits}
 * (compacted, key user id). Writes {@code usage-totals-hourly} and {@code usage-totals-monthly}
 * (running totals), {@code usage-totals-final} (closed periods), {@code usage-events-late},
 * {@code usage-alerts} and {@code usage-events-dlq}.
 *
 * <p>Everything per user happens in one processor with no repartition: the input is keyed by user id,
 * so all events of a user — and every duplicate of an event — reach the same task, and the dedup
 * marker, the totals and the outputs commit in one exactly-once transaction (ADR 0020). No store has a record
 * cache, so no transaction can hold a marker without the totals it guards (ADR 0076).
 */
public final class UsageAggregationTopology {

    static final String SOURCE_EVENTS = "usage-events-source";
    static final String SOURCE_LIMITS = "user-limits-source";
    static final String AGGREGATE = "aggregate";
    static final String SINK_HOURLY = "hourly-totals-sink";
    static final String SINK_MONTHLY = "monthly-totals-sink";
    static final String SINK_FINAL = "final-totals-sink";
    static final String SINK_LATE = "late-events-sink";
    static final String SINK_ALERTS = "alerts-sink";
    static final String SINK_DLQ = "dead-letter-sink";
    static final String SINK_ROLLUPS = "rollups-sink";

    static final String STORE_DEDUP_STATE = "dedup-state";
    /** Dedup slot stores, one per generation of stream time in rotation (see the processor). */
    static final int DEDUP_SLOTS = 3;
    static final String STORE_TOTALS = "totals";
    static final String STORE_OPEN = "totals-open";
    static final String STORE_USER_MONTH = "user-month-credit-cost";
    static final String STORE_ALERTS = "alerts-raised";
    static final String STORE_LIMITS = "user-limits";
    /** Attribution rollups and each user-month-dimension's admitted values (ADR 0078); uncached like the rest. */
    static final String STORE_ROLLUPS = "rollups";
    static final String STORE_ROLLUP_VALUES = "rollup-values";

    private UsageAggregationTopology() {
    }

    public static Topology build(AggregatorConfig config, Topics topics) {
        return build(config, topics, AggregatorMetrics.noop());
    }

    public static Topology build(AggregatorConfig config, Topics topics, AggregatorMetrics metrics) {
        return build(config, topics, metrics, false);
    }

    /**
     * {@code recordCaches} true gives the stores Kafka Streams' record cache, as before ADR 0076: only for
     * AggregatorBenchmark's before/after comparison, never for billing.
     */
    @SuppressWarnings({"unchecked", "rawtypes"})
    static Topology build(AggregatorConfig config, Topics topics, AggregatorMetrics metrics, boolean recordCaches) {
        Serde<String> strings = Serdes.String();
        Serde<Long> longs = Serdes.Long();
        Topology topology = new Topology();

        topology.addSource(SOURCE_EVENTS, strings.deserializer(), Serdes.ByteArray().deserializer(), topics.usageEvents().name());
        topology.addSource(SOURCE_LIMITS, strings.deserializer(), Serdes.ByteArray().deserializer(), topics.userLimits().name());
        // One processor for both: the per-event credit check reads limits from memory, not RocksDB.
        topology.addProcessor(AGGREGATE, () -> new UsageAggregationProcessor(config, metrics, topics.userLimits().name()),
                SOURCE_EVENTS, SOURCE_LIMITS);

        // No store has a record cache (ADR 0076): every put reaches RocksDB and the changelog at once, in the order
        // process() makes it, so any prefix of the changelog a transaction commits holds each event's dedup marker
        // only together with its totals — a cache would flush the totals later than the (uncached) marker.
        for (int slot = 0; slot < DEDUP_SLOTS; slot++) {
            topology.addStateStore(store(dedupStore(slot), strings, longs, false), AGGREGATE);
        }
        topology.addStateStore(store(STORE_DEDUP_STATE, strings, longs, recordCaches), AGGREGATE);
        topology.addStateStore(store(STORE_TOTALS, strings, RunningTotal.SERDE, recordCaches), AGGREGATE);
        topology.addStateStore(store(STORE_OPEN, strings, strings, recordCaches), AGGREGATE);
        topology.addStateStore(store(STORE_USER_MONTH, strings, longs, recordCaches), AGGREGATE);
        topology.addStateStore(store(STORE_ALERTS, strings, longs, recordCaches), AGGREGATE);
        // Written from the co-partitioned user-limits topic.
        topology.addStateStore(store(STORE_LIMITS, strings, longs, recordCaches), AGGREGATE);
        // Always added (empty without ROLLUP_DIMENSIONS), so turning rollups on changes no task's store set.
        topology.addStateStore(store(STORE_ROLLUPS, strings, EventSerdes.usageRollup(), recordCaches), AGGREGATE);
        topology.addStateStore(store(STORE_ROLLUP_VALUES, strings, longs, recordCaches), AGGREGATE);

        Serializer<String> keys = strings.serializer();
        Serde<UsageTotal> totals = EventSerdes.usageTotal();
        topology.addSink(SINK_HOURLY, topics.hourlyTotals().name(), keys, (Serializer) totals.serializer(), AGGREGATE);
        topology.addSink(SINK_MONTHLY, topics.monthlyTotals().name(), keys, (Serializer) totals.serializer(), AGGREGATE);
        topology.addSink(SINK_FINAL, topics.finalTotals().name(), keys, (Serializer) totals.serializer(), AGGREGATE);
        topology.addSink(SINK_LATE, topics.lateEvents().name(), keys, (Serializer) Serdes.ByteArray().serializer(), AGGREGATE);
        topology.addSink(SINK_ALERTS, topics.alerts().name(), keys, (Serializer) EventSerdes.usageAlert().serializer(), AGGREGATE);
        topology.addSink(SINK_DLQ, topics.deadLetter().name(), keys, (Serializer) Serdes.ByteArray().serializer(), AGGREGATE);
        topology.addSink(SINK_ROLLUPS, topics.rollups().name(), keys, (Serializer) EventSerdes.usageRollup().serializer(), AGGREGATE);
        return topology;
    }

    /** The dedup slot stores: event ids of one generation of stream time each (see the processor). */
    static String dedupStore(int slot) {
        return "dedup-event-ids-" + slot;
    }

    /** A persistent, changelogged store, without a record cache but in the benchmark's "before" (see {@link #build}). */
    private static <K, V> StoreBuilder<KeyValueStore<K, V>> store(String name, Serde<K> keys, Serde<V> values, boolean cached) {
        StoreBuilder<KeyValueStore<K, V>> b = Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(name), keys, values);
        return cached ? b.withCachingEnabled() : b.withCachingDisabled();
    }
}
