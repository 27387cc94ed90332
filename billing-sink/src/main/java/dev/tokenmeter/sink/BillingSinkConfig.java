package dev.tokenmeter.sink;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.config.Redact;
import dev.tokenmeter.sink.upstream.UpstreamSettings;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Configuration of the billing sink, from environment variables; every key has a default and a
 * one-line description ({@link #KEYS}); a bad value fails start-up naming the key.
 */
public record BillingSinkConfig(
        KafkaClientSettings kafka,
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
        int metricsPort,
        UpstreamSettings upstream) {

    public static final List<ConfigKey> KEYS = ConfigKey.join(KafkaClientSettings.KEYS, List.of(
            new ConfigKey("GROUP_ID", "tokenmeter-billing-sink", "Consumer group; offsets are stored in Postgres under this name."),
            new ConfigKey("INSTANCE_ID", "", "Stable id of this instance (static group membership: a restart resumes without a rebalance); default the host name."),
            new ConfigKey("DATABASE_URL", "jdbc:postgresql://127.0.0.1:5432/tokenmeter", "JDBC URL of the billing database."),
            new ConfigKey("DATABASE_USER", "tokenmeter_sink_svc", "Postgres login of the sink (member of tokenmeter_sink; the init step creates it), never the schema owner."),
            ConfigKey.secret("DATABASE_PASSWORD", "", "Postgres password. Never logged."),
            new ConfigKey("DATABASE_POOL_SIZE", "4", "Connections in the pool."),
            new ConfigKey("BATCH_MAX_RECORDS", "2000", "Most records written in one database transaction."),
            new ConfigKey("RETRY_BACKOFF_MAX", "30s", "Longest wait between retries while Postgres is unavailable."),
            new ConfigKey("PERIOD_CLOSE_GRACE", "3d", "How long after a month's end its billing period closes (invoice lines become immutable)."),
            new ConfigKey("PERIOD_CLOSE_INTERVAL", "1m", "How often the period closer runs (closes due periods, books late usage as adjustments)."),
            new ConfigKey("METRICS_PORT", "9466", "Port of the Prometheus /metrics endpoint (0 = a free port, -1 = off).")),
            UpstreamSettings.KEYS);

    public static BillingSinkConfig fromEnv(Map<String, String> env) {
        EnvReader r = new EnvReader(env, KEYS);
        return new BillingSinkConfig(
                KafkaClientSettings.read(r),
                r.string("GROUP_ID"),
                r.stringOrHostName("INSTANCE_ID", "billing-sink"),
                r.string("DATABASE_URL"),
                r.string("DATABASE_USER"),
                r.string("DATABASE_PASSWORD"),
                r.integer("DATABASE_POOL_SIZE", 1, 200),
                r.integer("BATCH_MAX_RECORDS", 1, 50_000),
                r.duration("RETRY_BACKOFF_MAX", Duration.ofMillis(1)),
                r.duration("PERIOD_CLOSE_GRACE"),
                r.duration("PERIOD_CLOSE_INTERVAL", Duration.ofMillis(1)),
                r.integer("METRICS_PORT", -1, 65535),
                UpstreamSettings.read(r));
    }

    public String bootstrapServers() {
        return kafka.bootstrapServers();
    }

    @Override
    public String toString() {
        return "BillingSinkConfig[kafka=" + kafka + ", groupId=" + groupId + ", databaseUrl="
                + Redact.url(databaseUrl) + ", databaseUser=" + databaseUser + ", databasePassword=<redacted>, batchMaxRecords="
                + batchMaxRecords + ", retryBackoffMax=" + retryBackoffMax + ", periodCloseGrace=" + periodCloseGrace
                + ", periodCloseInterval=" + periodCloseInterval + ", metricsPort=" + metricsPort + ", upstream=" + upstream + "]";
    }
}
