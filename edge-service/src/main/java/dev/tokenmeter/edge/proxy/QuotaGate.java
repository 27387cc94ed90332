package dev.tokenmeter.edge.proxy;

import java.time.Duration;

/**
 * What the proxy needs from the quota engine: reserve an estimate before the call, then settle the actual cost or
 * release the reservation. The proxy codes against this port; {@code QuotaEngineGate} adapts the quota engine
 * ({@code dev.tokenmeter.edge.quota.QuotaEngine}) to it, so the proxy's flow does not change with the engine's
 * internals.
 */
public interface QuotaGate {

    /**
     * @param eventId the usage event this call will publish, or null when not known yet; named as the triggering
     *                event of a usage alert this decision raises
     */
    Decision reserve(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                     String eventId);

    /**
     * Charges {@code requests} and {@code tokens} to the caller's rate limits without reserving anything (batch
     * ingest; a bad-input rejection charges one request before its event is published), with the same limits
     * {@link #reserve} checks. Rejected (RATE_LIMITED_*, with a retry-after) when they would be exceeded; then nothing
     * is charged. An admitted decision has no reservation id.
     */
    Decision admit(String userId, String apiKeyId, long requests, long tokens);

    /**
     * Charges a bad-input rejection one request before it is answered (and, at the proxy, before its event is
     * published). The decision when that puts the caller over a rate limit (answer it: 429 with retry-after, no
     * event), else empty; empty too when the charge itself failed, since the rejection spends nothing.
     */
    default java.util.Optional<Decision> rateLimitedRejection(String userId, String apiKeyId) {
        Decision d;
        try {
            d = admit(userId, apiKeyId, 1, 0);
        } catch (RuntimeException e) {
            return java.util.Optional.empty();
        }
        boolean limited = d.rejectReason() == RejectReason.RATE_LIMITED_REQUESTS || d.rejectReason() == RejectReason.RATE_LIMITED_TOKENS;
        return limited ? java.util.Optional.of(d) : java.util.Optional.empty();
    }

    /** @param eventId the usage event that bills this cost, or null; as for {@link #reserve} */
    void settle(String reservationId, long actualCostNanoUsd, long actualTokens, String eventId);

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
     * @param softLimitReached       the month's committed usage is at or over the user's soft limit (a warning for
     *                               the caller on every admitted answer while it is)
     * @param softLimitPercent       the soft limit in percent of the monthly credit; 0 when unknown
     */
    record Decision(Route route, RejectReason rejectReason, String reservationId, Limit requests, Limit tokens,
                    Long remainingCreditNanoUsd, boolean failOpen, Duration retryAfter, boolean softLimitReached,
                    int softLimitPercent) {

        /** The answer when the gate itself failed: QUOTA_UNAVAILABLE, retry after {@code retryAfter}. */
        public static Decision unavailable(Duration retryAfter) {
            return new Decision(Route.REJECTED, RejectReason.QUOTA_UNAVAILABLE, null, null, null, null, false, retryAfter,
                    false, 0);
        }

        public boolean admitted() {
            return route != Route.REJECTED;
        }
    }
}
