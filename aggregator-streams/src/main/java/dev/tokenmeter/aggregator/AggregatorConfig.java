package dev.tokenmeter.aggregator;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.config.KafkaClientSettings;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Configuration of the aggregator, from environment variables. Every key has a default and a
 * one-line description ({@link #KEYS}); a bad value fails start-up with a message naming the key.
 */
public record AggregatorConfig(
        KafkaClientSettings kafka,
        String applicationId,
        String instanceId,
        String stateDir,
        String processingGuarantee,
        int numStreamThreads,
        int numStandbyReplicas,
        Duration commitInterval,
        Duration hourGrace,
        Duration monthGrace,
        Duration dedupRetention,
        Duration closedTotalsRetention,
        Duration emitInterval,
        Duration sendTimeout,
        int metricsPort,
        List<String> rollupDimensions,
        int rollupMaxValuesPerUser,
        int rocksDbMemoryMib) {

    /** At most this many label keys are rollup dimensions (ADR 0078). */
    public static final int MAX_ROLLUP_DIMENSIONS = 3;

    /** The shortest DEDUP_RETENTION accepted. */
    public static final Duration MIN_DEDUP_RETENTION = Duration.ofHours(1);

    /** The shortest CLOSED_TOTALS_RETENTION accepted. */
    public static final Duration MIN_CLOSED_TOTALS_RETENTION = Duration.ofHours(1);

    public static final List<ConfigKey> KEYS = ConfigKey.join(KafkaClientSettings.KEYS, List.of(
            new ConfigKey("APPLICATION_ID", "tokenmeter-aggregator", "Kafka Streams application id (consumer group, internal topic prefix)."),
            new ConfigKey("INSTANCE_ID", "", "Stable id of this instance (static group membership: a restart resumes without a rebalance); default the host name."),
            new ConfigKey("STATE_DIR", "/tmp/tokenmeter-aggregator", "Directory of the RocksDB state stores; keep it on a persistent volume."),
            new ConfigKey("PROCESSING_GUARANTEE", "exactly_once_v2", "exactly_once_v2 (billing) or at_least_once (benchmarks only)."),
            new ConfigKey("NUM_STREAM_THREADS", "1", "Stream threads in this instance."),
            new ConfigKey("NUM_STANDBY_REPLICAS", "0", "Warm standby copies of each task's state on other instances."),
            new ConfigKey("COMMIT_INTERVAL", "1s", "How often offsets, state and outputs are committed (one transaction each); shorter means fresher totals, more overhead."),
            new ConfigKey("HOUR_GRACE", "1h", "How long after an hour ends events for it still count as on time; its final total follows."),
            new ConfigKey("MONTH_GRACE", "2d", "How long after a calendar month ends its final total waits for stragglers."),
            new ConfigKey("DEDUP_RETENTION", "7d", "How long event ids are remembered for deduplication (at least 1h; longer than any redelivery: producer retries, an edge's spool replayed after a Kafka outage)."),
            new ConfigKey("CLOSED_TOTALS_RETENTION", "35d", "How long a period's final total is kept after it closed (end + grace) for late corrections (at least 1h); after it the total is forgotten and an event for that period is dead-lettered, counted in the ledger only (ADR 0091)."),
            new ConfigKey("EMIT_INTERVAL", "1s", "How often changed running totals are emitted (latest value per total)."),
            new ConfigKey("SEND_TIMEOUT", "10m", "How long a send may wait for a broker that is away (the producer's max.block.ms and delivery.timeout.ms) before its task is marked corrupted and redone from its last commit."),
            new ConfigKey("METRICS_PORT", "9465", "Port of the Prometheus /metrics endpoint (0 = a free port, -1 = off)."),
            new ConfigKey("ROLLUP_DIMENSIONS", "", "Label keys rolled up per value, comma-separated, at most 3 (e.g. feature,customer); empty = no rollups (ADR 0078)."),
            new ConfigKey("ROLLUP_MAX_VALUES_PER_USER", "100", "Distinct values of one dimension rolled up per user and month (1..10000); later new values count as '(other)'."),
            new ConfigKey("ROCKSDB_MEMORY_MIB", "128", "Native memory of all RocksDB state stores of this instance together (block cache with the memtables charged to it, at most a quarter for memtables; 16..65536 MiB, ADR 0096). Add it to the heap when sizing the container.")));

    public static AggregatorConfig fromEnv(Map<String, String> env) {
        EnvReader r = new EnvReader(env, KEYS);
        return new AggregatorConfig(
                KafkaClientSettings.read(r),
                r.string("APPLICATION_ID"),
                r.stringOrHostName("INSTANCE_ID", "aggregator"),
                r.string("STATE_DIR"),
                r.oneOf("PROCESSING_GUARANTEE", "exactly_once_v2", "at_least_once"),
                r.integer("NUM_STREAM_THREADS", 1, 64),
                r.integer("NUM_STANDBY_REPLICAS", 0, 10),
                r.duration("COMMIT_INTERVAL", Duration.ofMillis(1)),
                r.duration("HOUR_GRACE"),
                r.duration("MONTH_GRACE"),
                // Ids must be remembered longer than any redelivery can come late (producer retries, an edge's spool
                // replayed after a Kafka outage): a short retention would count a redelivered call twice.
                r.duration("DEDUP_RETENTION", MIN_DEDUP_RETENTION),
                r.duration("CLOSED_TOTALS_RETENTION", MIN_CLOSED_TOTALS_RETENTION),
                r.duration("EMIT_INTERVAL", Duration.ofMillis(1)),
                r.duration("SEND_TIMEOUT", Duration.ofSeconds(1)),
                r.integer("METRICS_PORT", -1, 65535),
                r.parse("ROLLUP_DIMENSIONS", "at most " + MAX_ROLLUP_DIMENSIONS
                        + " distinct label keys (1-32 of [a-z0-9_.-], starting with a letter), comma-separated",
                        AggregatorConfig::dimensions),
                r.integer("ROLLUP_MAX_VALUES_PER_USER", 1, 10_000),
                r.integer("ROCKSDB_MEMORY_MIB", 16, 65_536));
    }

    /** The configured rollup dimensions: distinct label keys, at most three; refuses anything else. */
    static List<String> dimensions(String v) {
        if (v == null || v.isBlank()) {
            return List.of();
        }
        List<String> keys = java.util.Arrays.stream(v.split(",", -1)).map(String::strip).toList();
        if (keys.size() > MAX_ROLLUP_DIMENSIONS || new java.util.HashSet<>(keys).size() != keys.size()
                || !keys.stream().allMatch(dev.tokenmeter.events.validate.Labels::isKey)) {
            throw new IllegalArgumentException(v);
        }
        return keys;
    }

    public String bootstrapServers() {
        return kafka.bootstrapServers();
    }

    /** Defaults, for tests and benchmarks. */
    public static AggregatorConfig defaults() {
        return fromEnv(Map.of());
    }
}
