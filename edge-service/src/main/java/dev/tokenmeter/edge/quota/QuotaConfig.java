package dev.tokenmeter.edge.quota;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;

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

    public static final List<ConfigKey> KEYS = List.of(
            new ConfigKey("QUOTA_RESERVATION_TTL_MS", "600000", "an unsettled reservation is freed after this long (a crashed caller cannot lock credit)"),
            new ConfigKey("QUOTA_RESERVATION_RETENTION_MS", "86400000", "expired reservations' records are kept this long, so a late settle still counts the call (settled/released records: state and route only, for QUOTA_RESERVATION_TTL_MS; ADR 0067)"),
            new ConfigKey("QUOTA_FAILURE_POLICY", "FAIL_CLOSED", "FAIL_OPEN (admit against a local share of the limits), FAIL_CLOSED (reject, retryable) or FAIL_TO_DATABASE (decide in Postgres, exact; ADR 0072) while Redis is unavailable"),
            new ConfigKey("QUOTA_BREAKER_FAILURES", "5", "consecutive Redis failures that open the circuit breaker"),
            new ConfigKey("QUOTA_BREAKER_OPEN_MS", "2000", "how long the breaker stays open before one probe (half-open); also the Retry-After of QUOTA_UNAVAILABLE"),
            new ConfigKey("QUOTA_FAIL_OPEN_SHARE_PERCENT", "10", "share of each user's limits and monthly credit this process may admit while failing open"),
            new ConfigKey("QUOTA_ACCOUNT_CACHE_TTL_MS", "5000", "how long an account read from Postgres is cached"),
            new ConfigKey("QUOTA_REDIS_TIMEOUT_MS", "100", "Redis command timeout"),
            new ConfigKey("QUOTA_API_KEY_LIMIT_PERCENT", "100", "per-API-key rate limits as a percent of the user's limits"),
            new ConfigKey("QUOTA_SWEEP_INTERVAL_MS", "30000", "period of the expired-reservation sweeper (0 = off; reserve also expires lazily)"),
            new ConfigKey("QUOTA_SWEEP_BATCH", "100", "at most this many reservations freed per user and script call"),
            new ConfigKey("QUOTA_RECONCILE_INTERVAL_MS", "60000", "period of the Redis-vs-Postgres reconciler (0 = off)"),
            new ConfigKey("QUOTA_REBUILD_LOCK_MS", "5000", "expiry of the per-user rebuild lock in Redis"));

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
        EnvReader r = new EnvReader(env, KEYS);
        return new QuotaConfig(
                r.millis("QUOTA_RESERVATION_TTL_MS"),
                r.millis("QUOTA_RESERVATION_RETENTION_MS"),
                r.enumValue("QUOTA_FAILURE_POLICY", FailurePolicy.class),
                r.integer("QUOTA_BREAKER_FAILURES", 1, Integer.MAX_VALUE),
                r.millis("QUOTA_BREAKER_OPEN_MS"),
                r.integer("QUOTA_FAIL_OPEN_SHARE_PERCENT", 1, 100),
                r.millis("QUOTA_ACCOUNT_CACHE_TTL_MS"),
                r.millis("QUOTA_REDIS_TIMEOUT_MS"),
                r.integer("QUOTA_API_KEY_LIMIT_PERCENT", 1, 100),
                r.millis("QUOTA_SWEEP_INTERVAL_MS"),
                r.integer("QUOTA_SWEEP_BATCH", 1, Integer.MAX_VALUE),
                r.millis("QUOTA_RECONCILE_INTERVAL_MS"),
                r.millis("QUOTA_REBUILD_LOCK_MS"));
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

    private static void positive(String name, Duration d) {
        if (d == null || d.isZero() || d.isNegative()) throw new IllegalArgumentException(name + " must be positive: " + d);
    }

    private static void notNegative(String name, Duration d) {
        if (d == null || d.isNegative()) throw new IllegalArgumentException(name + " must not be negative: " + d);
    }
}
