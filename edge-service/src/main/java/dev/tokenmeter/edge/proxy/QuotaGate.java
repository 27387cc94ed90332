package dev.tokenmeter.edge.proxy;

import java.time.Duration;

/**
 * What the proxy needs from the quota engine: reserve an estimate before the call, then settle the actual cost or
 * release the reservation. The proxy codes against this port; {@code QuotaEngineGate} adapts the quota engine
 * ({@code dev.tokenmeter.edge.quota.QuotaEngine}) to it, so the proxy's flow does not change with the engine's
 * internals.
 */
public interface QuotaGate {

    Decision reserve(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens);

    void settle(String reservationId, long actualCostNanoUsd, long actualTokens);

    void release(String reservationId);

    /**
     * Real-time usage of {@code month} as the quota engine holds it (settled and reserved spend, credit); empty when
     * the engine cannot say (unknown user, or an engine without this view). Used by {@code GET /v1/usage}.
     */
    default java.util.Optional<RealtimeUsage> usage(String userId, java.time.YearMonth month) {
        return java.util.Optional.empty();
    }

    /** A month's spend as the quota engine sees it right now, in nano-USD. */
    record RealtimeUsage(long creditNanoUsd, long settledNanoUsd, long reservedNanoUsd) {
        public long remainingNanoUsd() {
            return creditNanoUsd - settledNanoUsd - reservedNanoUsd;
        }
    }

    /** True when decisions can be made (Redis reachable, or the breaker is open under a fail-open policy). */
    boolean isReady();

    enum Route { SERVICE_CREDIT, PERSONAL_KEY, REJECTED }

    enum RejectReason {
        CREDIT_EXHAUSTED, RATE_LIMITED_REQUESTS, RATE_LIMITED_TOKENS, ACCOUNT_DISABLED, UNKNOWN_USER, QUOTA_UNAVAILABLE
    }

    /** One rate-limit window as the caller sees it: OpenAI's limit / remaining / reset headers. */
    record Limit(long limit, long remaining, Duration resetIn) {
    }

    /**
     * @param reservationId          set unless rejected
     * @param requests               null when the engine has no request limit to report
     * @param tokens                 null when the engine has no token limit to report
     * @param remainingCreditNanoUsd null when unknown (e.g. personal key, or fail-open)
     * @param failOpen               true when admitted without Redis under the fail-open policy
     * @param retryAfter             when rejected for a reason that passes, how long to wait
     */
    record Decision(Route route, RejectReason rejectReason, String reservationId, Limit requests, Limit tokens,
                    Long remainingCreditNanoUsd, boolean failOpen, Duration retryAfter) {

        public boolean admitted() {
            return route != Route.REJECTED;
        }
    }
}
