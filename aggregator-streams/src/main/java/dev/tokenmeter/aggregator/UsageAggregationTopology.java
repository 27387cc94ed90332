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
 * marker, the totals and the outputs commit in one exactly-once transaction (ADR 0020).
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

    static final String STORE_DEDUP_STATE = "dedup-state";
    /** Dedup slot stores, one per generation of stream time in rotation (see the processor). */
    static final int DEDUP_SLOTS = 3;
    static final String STORE_TOTALS = "totals";
    static final String STORE_OPEN = "totals-open";
    static final String STORE_USER_MONTH = "user-month-credit-cost";
    static final String STORE_ALERTS = "alerts-raised";
    static final String STORE_LIMITS = "user-limits";

    private UsageAggregationTopology() {
    }

    public static Topology build(AggregatorConfig config, Topics topics) {
        return build(config, topics, AggregatorMetrics.noop());
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    public static Topology build(AggregatorConfig config, Topics topics, AggregatorMetrics metrics) {
        Serde<String> strings = Serdes.String();
        Serde<Long> longs = Serdes.Long();
        Topology topology = new Topology();

        topology.addSource(SOURCE_EVENTS, strings.deserializer(), Serdes.ByteArray().deserializer(), topics.usageEvents().name());
        topology.addSource(SOURCE_LIMITS, strings.deserializer(), Serdes.ByteArray().deserializer(), topics.userLimits().name());
        // One processor for both: the per-event credit check reads limits from memory, not RocksDB.
        topology.addProcessor(AGGREGATE, () -> new UsageAggregationProcessor(config, metrics, topics.userLimits().name()),
                SOURCE_EVENTS, SOURCE_LIMITS);

        // Event ids are unique by nature: a cache would only churn (sorted-map inserts and evictions).
        for (int slot = 0; slot < DEDUP_SLOTS; slot++) {
            topology.addStateStore(uncached(dedupStore(slot), strings, longs), AGGREGATE);
        }
        topology.addStateStore(kv(STORE_DEDUP_STATE, strings, longs), AGGREGATE);
        topology.addStateStore(kv(STORE_TOTALS, strings, RunningTotal.SERDE), AGGREGATE);
        topology.addStateStore(kv(STORE_OPEN, strings, strings), AGGREGATE);
        topology.addStateStore(kv(STORE_USER_MONTH, strings, longs), AGGREGATE);
        topology.addStateStore(kv(STORE_ALERTS, strings, longs), AGGREGATE);
        // Written from the co-partitioned user-limits topic.
        topology.addStateStore(kv(STORE_LIMITS, strings, longs), AGGREGATE);

        Serializer<String> keys = strings.serializer();
        Serde<UsageTotal> totals = EventSerdes.usageTotal();
        topology.addSink(SINK_HOURLY, topics.hourlyTotals().name(), keys, (Serializer) totals.serializer(), AGGREGATE);
        topology.addSink(SINK_MONTHLY, topics.monthlyTotals().name(), keys, (Serializer) totals.serializer(), AGGREGATE);
        topology.addSink(SINK_FINAL, topics.finalTotals().name(), keys, (Serializer) totals.serializer(), AGGREGATE);
        topology.addSink(SINK_LATE, topics.lateEvents().name(), keys, (Serializer) Serdes.ByteArray().serializer(), AGGREGATE);
        topology.addSink(SINK_ALERTS, topics.alerts().name(), keys, (Serializer) EventSerdes.usageAlert().serializer(), AGGREGATE);
        topology.addSink(SINK_DLQ, topics.deadLetter().name(), keys, (Serializer) Serdes.ByteArray().serializer(), AGGREGATE);
        return topology;
    }

    /** The dedup slot stores: event ids of one generation of stream time each (see the processor). */
    static String dedupStore(int slot) {
        return "dedup-event-ids-" + slot;
    }

    private static <K, V> StoreBuilder<KeyValueStore<K, V>> uncached(String name, Serde<K> keys, Serde<V> values) {
        return Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(name), keys, values);
    }

    private static <K, V> StoreBuilder<KeyValueStore<K, V>> kv(String name, Serde<K> keys, Serde<V> values) {
        // Caching folds many updates of one key into one changelog record per commit.
        return Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(name), keys, values).withCachingEnabled();
    }
}
