package dev.tokenmeter.edge.quota;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * Configuration of the quota engine. {@link #fromEnv} reads the {@code QUOTA_*} keys listed in
 * {@link #KEYS} (each with its default and a one-line description) and fails fast naming a bad key.
 */
public record QuotaConfig(
        Duration reservationTtl,
        Duration reservationRetention,
        FailurePolicy failurePolicy,
        int breakerFailureThreshold,
        Duration breakerOpenDuration,
        int failOpenSharePercent,
        Duration accountCacheTtl,
        Duration redisTimeout,
        int apiKeyLimitPercent,
        Duration sweepInterval,
        int sweepBatch,
        Duration reconcileInterval,
        Duration rebuildLockTtl) {

    /** One documented configuration key. */
    public record Key(String name, String defaultValue, String description) {}

    public static final List<Key> KEYS = List.of(
            new Key("QUOTA_RESERVATION_TTL_MS", "600000", "an unsettled reservation is freed after this long (a crashed caller cannot lock credit)"),
            new Key("QUOTA_RESERVATION_RETENTION_MS", "86400000", "settled/released/expired records are kept this long so repeats stay idempotent"),
            new Key("QUOTA_FAILURE_POLICY", "FAIL_CLOSED", "FAIL_OPEN (admit against a local share of the limits) or FAIL_CLOSED (reject, retryable) while Redis is unavailable"),
            new Key("QUOTA_BREAKER_FAILURES", "5", "consecutive Redis failures that open the circuit breaker"),
            new Key("QUOTA_BREAKER_OPEN_MS", "2000", "how long the breaker stays open before one probe (half-open); also the Retry-After of QUOTA_UNAVAILABLE"),
            new Key("QUOTA_FAIL_OPEN_SHARE_PERCENT", "10", "share of each user's limits and monthly credit this process may admit while failing open"),
            new Key("QUOTA_ACCOUNT_CACHE_TTL_MS", "5000", "how long an account read from Postgres is cached"),
            new Key("QUOTA_REDIS_TIMEOUT_MS", "100", "Redis command timeout"),
            new Key("QUOTA_API_KEY_LIMIT_PERCENT", "100", "per-API-key rate limits as a percent of the user's limits"),
            new Key("QUOTA_SWEEP_INTERVAL_MS", "30000", "period of the expired-reservation sweeper (0 = off; reserve also expires lazily)"),
            new Key("QUOTA_SWEEP_BATCH", "100", "at most this many reservations freed per user and script call"),
            new Key("QUOTA_RECONCILE_INTERVAL_MS", "60000", "period of the Redis-vs-Postgres reconciler (0 = off)"),
            new Key("QUOTA_REBUILD_LOCK_MS", "5000", "expiry of the per-user rebuild lock in Redis"));

    public QuotaConfig {
        Objects.requireNonNull(failurePolicy, "failurePolicy");
        positive("reservationTtl", reservationTtl);
        positive("reservationRetention", reservationRetention);
        positive("breakerOpenDuration", breakerOpenDuration);
        positive("redisTimeout", redisTimeout);
        positive("rebuildLockTtl", rebuildLockTtl);
        notNegative("accountCacheTtl", accountCacheTtl);
        notNegative("sweepInterval", sweepInterval);
        notNegative("reconcileInterval", reconcileInterval);
        if (breakerFailureThreshold < 1) throw new IllegalArgumentException("breakerFailureThreshold must be >= 1: " + breakerFailureThreshold);
        if (failOpenSharePercent < 1 || failOpenSharePercent > 100) throw new IllegalArgumentException("failOpenSharePercent must be 1..100: " + failOpenSharePercent);
        if (apiKeyLimitPercent < 1 || apiKeyLimitPercent > 100) throw new IllegalArgumentException("apiKeyLimitPercent must be 1..100: " + apiKeyLimitPercent);
        if (sweepBatch < 1) throw new IllegalArgumentException("sweepBatch must be >= 1: " + sweepBatch);
    }

    public static QuotaConfig defaults() {
        return fromEnv(Map.of());
    }

    public static QuotaConfig fromEnv(Map<String, String> env) {
        Map<String, String> v = new LinkedHashMap<>();
        for (Key k : KEYS) {
            String raw = env.get(k.name());
            v.put(k.name(), raw == null || raw.isBlank() ? k.defaultValue() : raw.trim());
        }
        return new QuotaConfig(
                parse(v, "QUOTA_RESERVATION_TTL_MS", QuotaConfig::millis),
                parse(v, "QUOTA_RESERVATION_RETENTION_MS", QuotaConfig::millis),
                parse(v, "QUOTA_FAILURE_POLICY", FailurePolicy::valueOf),
                parse(v, "QUOTA_BREAKER_FAILURES", Integer::parseInt),
                parse(v, "QUOTA_BREAKER_OPEN_MS", QuotaConfig::millis),
                parse(v, "QUOTA_FAIL_OPEN_SHARE_PERCENT", Integer::parseInt),
                parse(v, "QUOTA_ACCOUNT_CACHE_TTL_MS", QuotaConfig::millis),
                parse(v, "QUOTA_REDIS_TIMEOUT_MS", QuotaConfig::millis),
                parse(v, "QUOTA_API_KEY_LIMIT_PERCENT", Integer::parseInt),
                parse(v, "QUOTA_SWEEP_INTERVAL_MS", QuotaConfig::millis),
                parse(v, "QUOTA_SWEEP_BATCH", Integer::parseInt),
                parse(v, "QUOTA_RECONCILE_INTERVAL_MS", QuotaConfig::millis),
                parse(v, "QUOTA_REBUILD_LOCK_MS", QuotaConfig::millis));
    }

    public QuotaConfig withFailurePolicy(FailurePolicy p) {
        return new QuotaConfig(reservationTtl, reservationRetention, p, breakerFailureThreshold, breakerOpenDuration,
                failOpenSharePercent, accountCacheTtl, redisTimeout, apiKeyLimitPercent, sweepInterval, sweepBatch,
                reconcileInterval, rebuildLockTtl);
    }

    public QuotaConfig withReservationTtl(Duration ttl) {
        return new QuotaConfig(ttl, reservationRetention, failurePolicy, breakerFailureThreshold, breakerOpenDuration,
                failOpenSharePercent, accountCacheTtl, redisTimeout, apiKeyLimitPercent, sweepInterval, sweepBatch,
                reconcileInterval, rebuildLockTtl);
    }

    public QuotaConfig withBackgroundOff() {
        return new QuotaConfig(reservationTtl, reservationRetention, failurePolicy, breakerFailureThreshold, breakerOpenDuration,
                failOpenSharePercent, accountCacheTtl, redisTimeout, apiKeyLimitPercent, Duration.ZERO, sweepBatch,
                Duration.ZERO, rebuildLockTtl);
    }

    private static Duration millis(String s) {
        return Duration.ofMillis(Long.parseLong(s));
    }

    private static <T> T parse(Map<String, String> v, String key, Function<String, T> f) {
        String raw = v.get(key);
        try {
            return f.apply(raw);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Bad value for " + key + ": '" + raw + "' ("
                    + KEYS.stream().filter(k -> k.name().equals(key)).findFirst().orElseThrow().description() + ")", e);
        }
    }

    private static void positive(String name, Duration d) {
        if (d == null || d.isZero() || d.isNegative()) throw new IllegalArgumentException(name + " must be positive: " + d);
    }

    private static void notNegative(String name, Duration d) {
        if (d == null || d.isNegative()) throw new IllegalArgumentException(name + " must not be negative: " + d);
    }
}
