package dev.tokenmeter.sink;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Configuration of the billing sink, from environment variables; every key has a default and a
 * one-line description ({@link #KEYS}); a bad value fails start-up naming the key.
 */
public record BillingSinkConfig(
        String bootstrapServers,
        String groupId,
        String instanceId,
        String databaseUrl,
        String databaseUser,
        String databasePassword,
        int databasePoolSize,
        int batchMaxRecords,
        Duration retryBackoffMax,
        Duration periodCloseGrace,
        Duration periodCloseInterval,
        int metricsPort) {

    public record Key(String name, String defaultValue, String description) {
    }

    public static final List<Key> KEYS = List.of(
            new Key("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka bootstrap servers."),
            new Key("GROUP_ID", "tokenmeter-billing-sink", "Consumer group; offsets are stored in Postgres under this name."),
            new Key("INSTANCE_ID", "", "Stable id of this instance (static group membership: a restart resumes without a rebalance); default the host name."),
            new Key("DATABASE_URL", "jdbc:postgresql://127.0.0.1:5432/tokenmeter", "JDBC URL of the billing database."),
            new Key("DATABASE_USER", "tokenmeter", "Postgres user."),
            new Key("DATABASE_PASSWORD", "", "Postgres password. Never logged."),
            new Key("DATABASE_POOL_SIZE", "4", "Connections in the pool."),
            new Key("BATCH_MAX_RECORDS", "2000", "Most records written in one database transaction."),
            new Key("RETRY_BACKOFF_MAX", "30s", "Longest wait between retries while Postgres is unavailable."),
            new Key("PERIOD_CLOSE_GRACE", "3d", "How long after a month's end its billing period closes (invoice lines become immutable)."),
            new Key("PERIOD_CLOSE_INTERVAL", "1m", "How often the period closer runs (closes due periods, books late usage as adjustments)."),
            new Key("METRICS_PORT", "9466", "Port of the Prometheus /metrics endpoint (0 = a free port, -1 = off)."));

    public static BillingSinkConfig fromEnv(Map<String, String> env) {
        Map<String, String> v = new LinkedHashMap<>();
        for (Key k : KEYS) {
            String value = env.get(k.name());
            v.put(k.name(), value == null || value.isBlank() ? k.defaultValue() : value.strip());
        }
        return new BillingSinkConfig(
                v.get("KAFKA_BOOTSTRAP_SERVERS"),
                v.get("GROUP_ID"),
                v.get("INSTANCE_ID").isEmpty() ? hostName() : v.get("INSTANCE_ID"),
                v.get("DATABASE_URL"),
                v.get("DATABASE_USER"),
                v.get("DATABASE_PASSWORD"),
                integer(v, "DATABASE_POOL_SIZE", 1, 200),
                integer(v, "BATCH_MAX_RECORDS", 1, 50_000),
                duration(v, "RETRY_BACKOFF_MAX"),
                duration(v, "PERIOD_CLOSE_GRACE"),
                duration(v, "PERIOD_CLOSE_INTERVAL"),
                integer(v, "METRICS_PORT", -1, 65535));
    }

    static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "billing-sink";
        }
    }

    @Override
    public String toString() {
        return "BillingSinkConfig[bootstrapServers=" + bootstrapServers + ", groupId=" + groupId + ", databaseUrl="
                + databaseUrl + ", databaseUser=" + databaseUser + ", databasePassword=<redacted>, batchMaxRecords="
                + batchMaxRecords + ", retryBackoffMax=" + retryBackoffMax + ", periodCloseGrace=" + periodCloseGrace
                + ", periodCloseInterval=" + periodCloseInterval + ", metricsPort=" + metricsPort + "]";
    }

    private static int integer(Map<String, String> v, String key, int min, int max) {
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

    private static Duration duration(Map<String, String> v, String key) {
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
            throw new IllegalArgumentException(key + " must be a duration such as 500ms, 30s, 2m, 1h or 3d, got '" + v.get(key) + "'");
        }
    }
}
