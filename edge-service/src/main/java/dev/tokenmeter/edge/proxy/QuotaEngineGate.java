package dev.tokenmeter.edge.proxy;

import dev.tokenmeter.edge.quota.DecisionMode;
import dev.tokenmeter.edge.quota.FailurePolicy;
import dev.tokenmeter.edge.quota.QuotaEngine;
import dev.tokenmeter.edge.quota.RateLimitStatus;
import dev.tokenmeter.edge.quota.ReserveRequest;
import io.lettuce.core.api.StatefulRedisConnection;

/**
 * The proxy's {@link QuotaGate} on the Redis quota engine. Ready when the Redis connection is up, or at any
 * time under the FAIL_OPEN policy (the engine then admits against its local share of the limits).
 */
public final class QuotaEngineGate implements QuotaGate {

    private final QuotaEngine engine;
    private final StatefulRedisConnection<String, String> redis;
    private final FailurePolicy policy;

    public QuotaEngineGate(QuotaEngine engine, StatefulRedisConnection<String, String> redis, FailurePolicy policy) {
        this.engine = engine;
        this.redis = redis;
        this.policy = policy;
    }

    @Override
    public QuotaGate.Decision reserve(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens) {
        dev.tokenmeter.edge.quota.Decision d = engine.reserve(new ReserveRequest(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens));
        Route route = Route.valueOf(d.route().name());
        RejectReason reason = d.rejectReason() == null ? null : RejectReason.valueOf(d.rejectReason().name());
        // The remaining credit is meaningful for service-credit calls and credit rejections decided in Redis.
        Long remaining = d.mode() == DecisionMode.REDIS && d.creditNanoUsd() > 0 ? d.remainingCreditNanoUsd() : null;
        return new QuotaGate.Decision(route, reason, d.reservationId(), limit(d.requests()), limit(d.tokens()), remaining,
                d.mode() == DecisionMode.FAIL_OPEN && d.admitted(), d.retryAfter());
    }

    private static Limit limit(RateLimitStatus s) {
        return s == null || s.limit() <= 0 ? null : new Limit(s.limit(), s.remaining(), s.resetIn());
    }

    @Override
    public void settle(String reservationId, long actualCostNanoUsd, long actualTokens) {
        engine.settle(reservationId, actualCostNanoUsd, actualTokens);
    }

    @Override
    public void release(String reservationId) {
        engine.release(reservationId);
    }

    @Override
    public java.util.Optional<RealtimeUsage> usage(String userId, java.time.YearMonth month) {
        try {
            dev.tokenmeter.edge.quota.UsageSnapshot u = engine.usage(userId, month);
            return java.util.Optional.of(new RealtimeUsage(u.creditNanoUsd(), u.settledNanoUsd(), u.reservedNanoUsd()));
        } catch (IllegalArgumentException unknownUser) {
            return java.util.Optional.empty();
        }
    }

    @Override
    public boolean isReady() {
        return policy == FailurePolicy.FAIL_OPEN || redis.isOpen();
    }
}
