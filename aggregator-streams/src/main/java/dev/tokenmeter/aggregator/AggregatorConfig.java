package dev.tokenmeter.aggregator;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Configuration of the aggregator, from environment variables. Every key has a default and a
 * one-line description ({@link #KEYS}); a bad value fails start-up with a message naming the key.
 */
public record AggregatorConfig(
        String bootstrapServers,
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
        Duration emitInterval,
        int metricsPort) {

    public record Key(String name, String defaultValue, String description) {
    }

    public static final List<Key> KEYS = List.of(
            new Key("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka bootstrap servers."),
            new Key("APPLICATION_ID", "tokenmeter-aggregator", "Kafka Streams application id (consumer group, internal topic prefix)."),
            new Key("INSTANCE_ID", "", "Stable id of this instance (static group membership: a restart resumes without a rebalance); default the host name."),
            new Key("STATE_DIR", "/tmp/tokenmeter-aggregator", "Directory of the RocksDB state stores; keep it on a persistent volume."),
            new Key("PROCESSING_GUARANTEE", "exactly_once_v2", "exactly_once_v2 (billing) or at_least_once (benchmarks only)."),
            new Key("NUM_STREAM_THREADS", "1", "Stream threads in this instance."),
            new Key("NUM_STANDBY_REPLICAS", "0", "Warm standby copies of each task's state on other instances."),
            new Key("COMMIT_INTERVAL", "1s", "How often offsets, state and outputs are committed (one transaction each); shorter means fresher totals, more overhead."),
            new Key("HOUR_GRACE", "1h", "How long after an hour ends events for it still count as on time; its final total follows."),
            new Key("MONTH_GRACE", "2d", "How long after a calendar month ends its final total waits for stragglers."),
            new Key("DEDUP_RETENTION", "7d", "How long event ids are remembered for deduplication (at least the longest producer retry)."),
            new Key("EMIT_INTERVAL", "1s", "How often changed running totals are emitted (latest value per total)."),
            new Key("METRICS_PORT", "9465", "Port of the Prometheus /metrics endpoint (0 = a free port, -1 = off)."));

    public static AggregatorConfig fromEnv(Map<String, String> env) {
        Map<String, String> v = new LinkedHashMap<>();
        for (Key k : KEYS) {
            String value = env.get(k.name());
            v.put(k.name(), value == null || value.isBlank() ? k.defaultValue() : value.strip());
        }
        String guarantee = v.get("PROCESSING_GUARANTEE");
        if (!guarantee.equals("exactly_once_v2") && !guarantee.equals("at_least_once")) {
            throw new IllegalArgumentException("PROCESSING_GUARANTEE must be exactly_once_v2 or at_least_once, got '" + guarantee + "'");
        }
        return new AggregatorConfig(
                v.get("KAFKA_BOOTSTRAP_SERVERS"),
                v.get("APPLICATION_ID"),
                v.get("INSTANCE_ID").isEmpty() ? hostName() : v.get("INSTANCE_ID"),
                v.get("STATE_DIR"),
                guarantee,
                integer(v, "NUM_STREAM_THREADS", 1, 64),
                integer(v, "NUM_STANDBY_REPLICAS", 0, 10),
                duration(v, "COMMIT_INTERVAL"),
                duration(v, "HOUR_GRACE"),
                duration(v, "MONTH_GRACE"),
                duration(v, "DEDUP_RETENTION"),
                duration(v, "EMIT_INTERVAL"),
                integer(v, "METRICS_PORT", -1, 65535));
    }

    /** Defaults, for tests and benchmarks. */
    public static AggregatorConfig defaults() {
        return fromEnv(Map.of());
    }


    static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "aggregator";
        }
    }

    static int integer(Map<String, String> v, String key, int min, int max) {
        String text = v.get(key);
        try {
            int value = Integer.parseInt(text);
            if (value < min || value > max) {
                throw new NumberFormatException();
            }
            return value;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + " must be a whole number from " + min + " to " + max + ", got '" + text + "'");
        }
    }

    /** 500ms, 30s, 5m, 1h, 7d. */
    static Duration duration(Map<String, String> v, String key) {
        String text = v.get(key).toLowerCase();
        try {
            if (text.endsWith("ms")) {
                return Duration.ofMillis(Long.parseLong(text.substring(0, text.length() - 2)));
            }
            long n = Long.parseLong(text.substring(0, text.length() - 1));
            return switch (text.charAt(text.length() - 1)) {
                case 's' -> Duration.ofSeconds(n);
                case 'm' -> Duration.ofMinutes(n);
                case 'h' -> Duration.ofHours(n);
                case 'd' -> Duration.ofDays(n);
                default -> throw new NumberFormatException();
            };
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(key + " must be a duration such as 500ms, 30s, 5m, 1h or 7d, got '" + v.get(key) + "'");
        }
    }
}
