package dev.tokenmeter.notifier;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.config.Redact;
import dev.tokenmeter.notifier.delivery.DeliveryPolicy;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Configuration of the alert-notifier, from environment variables; every key has a default and a one-line
 * description ({@link #KEYS}); a bad value fails start-up naming the key.
 */
public record NotifierConfig(
        KafkaClientSettings kafka,
        String groupId,
        String instanceId,
        String databaseUrl,
        String databaseUser,
        String databasePassword,
        int databasePoolSize,
        DeliveryPolicy delivery,
        int maxPendingAlerts,
        String adminHost,
        int adminPort,
        String adminToken) {

    public static final List<ConfigKey> KEYS = ConfigKey.join(KafkaClientSettings.KEYS, List.of(
            new ConfigKey("GROUP_ID", "tokenmeter-alert-notifier", "Consumer group of usage-alerts; offsets are committed only after each alert's outcome is in Postgres."),
            new ConfigKey("INSTANCE_ID", "", "Stable id of this instance (static group membership: a restart resumes without a rebalance); default the host name."),
            new ConfigKey("DATABASE_URL", "jdbc:postgresql://127.0.0.1:5432/tokenmeter", "JDBC URL of the billing database (webhooks, delivery log, dead letters)."),
            new ConfigKey("DATABASE_USER", "tokenmeter_notifier_svc", "Postgres login of the notifier (member of tokenmeter_notifier; the init step creates it), never the schema owner."),
            ConfigKey.secret("DATABASE_PASSWORD", "", "Postgres password. Never logged."),
            new ConfigKey("DATABASE_POOL_SIZE", "8", "Connections in the pool."),
            new ConfigKey("DELIVERY_RETRY_FOR", "24h", "How long a delivery is retried after its first attempt before it is dead-lettered (survives restarts)."),
            new ConfigKey("DELIVERY_BACKOFF_INITIAL", "1s", "Wait before the second attempt; each next wait doubles (with up to 20 % jitter)."),
            new ConfigKey("DELIVERY_BACKOFF_MAX", "5m", "Longest wait between two attempts."),
            new ConfigKey("DELIVERY_CONNECT_TIMEOUT", "5s", "TCP/TLS connect timeout of one attempt."),
            new ConfigKey("DELIVERY_REQUEST_TIMEOUT", "10s", "Whole-request timeout of one attempt (an endpoint slower than this counts as a failed attempt)."),
            new ConfigKey("DELIVERY_CONCURRENCY_PER_ENDPOINT", "4", "Most requests in flight to one webhook at a time; other webhooks are not affected by a slow one."),
            new ConfigKey("MAX_PENDING_ALERTS", "10000", "Most alerts consumed but not finished (delivered or dead-lettered); past it the consumer pauses."),
            new ConfigKey("ADMIN_HOST", "127.0.0.1", "Interface of the admin API (/admin/webhooks); keep it off public networks."),
            new ConfigKey("ADMIN_PORT", "8091", "Port of the admin API (0 = a free port, -1 = off)."),
            ConfigKey.secret("ADMIN_TOKEN", "", "Bearer token of the admin API; required unless ADMIN_PORT is -1. Never logged.")));

    public static NotifierConfig fromEnv(Map<String, String> env) {
        EnvReader r = new EnvReader(env, KEYS);
        Duration initial = r.duration("DELIVERY_BACKOFF_INITIAL", Duration.ofMillis(1));
        Duration max = r.duration("DELIVERY_BACKOFF_MAX", Duration.ofMillis(1));
        if (max.compareTo(initial) < 0) {
            throw new IllegalArgumentException("DELIVERY_BACKOFF_MAX must be at least DELIVERY_BACKOFF_INITIAL ("
                    + EnvReader.shortForm(initial) + "), got " + EnvReader.shortForm(max));
        }
        DeliveryPolicy delivery = new DeliveryPolicy(
                r.duration("DELIVERY_RETRY_FOR", Duration.ofSeconds(1)),
                initial, max,
                r.duration("DELIVERY_CONNECT_TIMEOUT", Duration.ofMillis(1)),
                r.duration("DELIVERY_REQUEST_TIMEOUT", Duration.ofMillis(1)),
                r.integer("DELIVERY_CONCURRENCY_PER_ENDPOINT", 1, 64));
        int adminPort = r.integer("ADMIN_PORT", -1, 65535);
        String adminToken = r.string("ADMIN_TOKEN");
        if (adminPort >= 0 && adminToken.length() < 16) {
            throw new IllegalArgumentException("ADMIN_TOKEN must be at least 16 characters while the admin API is on (ADMIN_PORT "
                    + adminPort + "); set ADMIN_PORT=-1 to turn it off");
        }
        return new NotifierConfig(
                KafkaClientSettings.read(r),
                r.string("GROUP_ID"),
                r.stringOrHostName("INSTANCE_ID", "alert-notifier"),
                r.string("DATABASE_URL"),
                r.string("DATABASE_USER"),
                r.string("DATABASE_PASSWORD"),
                r.integer("DATABASE_POOL_SIZE", 1, 200),
                delivery,
                r.integer("MAX_PENDING_ALERTS", 1, 1_000_000),
                r.string("ADMIN_HOST"),
                adminPort,
                adminToken);
    }

    @Override
    public String toString() {
        return "NotifierConfig[kafka=" + kafka + ", groupId=" + groupId + ", instanceId=" + instanceId + ", databaseUrl="
                + Redact.url(databaseUrl) + ", databaseUser=" + databaseUser + ", databasePassword=<redacted>, delivery="
                + delivery + ", maxPendingAlerts=" + maxPendingAlerts + ", admin=" + adminHost + ":" + adminPort
                + ", adminToken=<redacted>]";
    }
}
