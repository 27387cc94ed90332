package dev.tokenmeter.edge.call;

import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.DecisionMode;
import dev.tokenmeter.edge.quota.RejectReason;
import dev.tokenmeter.edge.quota.ReserveRequest;
import dev.tokenmeter.edge.quota.Route;
import dev.tokenmeter.edge.quota.SoftLimitStatus;
import dev.tokenmeter.edge.quota.UsageSnapshot;

import java.time.Duration;
import java.time.YearMonth;
import java.util.List;
import java.util.Optional;

/**
 * What a metered call needs from the quota engine: reserve an estimate before the call, then settle the actual cost
 * or release the reservation. The proxy and the metering API code against this port; {@link QuotaEngineGate}
 * adapts the quota engine ({@code dev.tokenmeter.edge.quota.QuotaEngine}) to it and raises the usage alerts. It
 * speaks the engine's own types ({@link Decision}, {@link Route}, {@link RejectReason}): there is one set of them.
 */
public interface QuotaGate {

    /**
     * @param eventId the usage event this call will publish, or null when not known yet; named as the triggering
     *                event of a usage alert this decision raises
     */
    Decision reserve(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                     String eventId);

    /**
     * As {@link #reserve(String, String, String, long, long, String)} for a key with its own monthly budget
     * ({@code keyBudgetNanoUsd}, null = none, ADR 0081): the call must fit the key's budget as well as the user's
     * credit. A gate without key budgets ignores it.
     */
    default Decision reserve(String userId, String apiKeyId, Long keyBudgetNanoUsd, String model, long estimatedCostNanoUsd,
                             long estimatedTokens, String eventId) {
        return reserve(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens, eventId);
    }

    /**
     * A reservation with its own id or TTL (a batch's, ADR 0087: named after the batch, held 25 h). A gate without
     * them (a test's) refuses: QUOTA_UNAVAILABLE.
     */
    default Decision reserve(ReserveRequest request, String eventId) {
        return unavailable(Duration.ofSeconds(1));
    }

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
    default Optional<Decision> rateLimitedRejection(String userId, String apiKeyId) {
        Decision d;
        try {
            d = admit(userId, apiKeyId, 1, 0);
        } catch (RuntimeException e) {
            return Optional.empty();
        }
        boolean limited = d.rejectReason() == RejectReason.RATE_LIMITED_REQUESTS || d.rejectReason() == RejectReason.RATE_LIMITED_TOKENS;
        return limited ? Optional.of(d) : Optional.empty();
    }

    /** @param eventId the usage event that bills this cost, or null; as for {@link #reserve} */
    void settle(String reservationId, long actualCostNanoUsd, long actualTokens, String eventId);

    void release(String reservationId);

    /**
     * Real-time usage of {@code month} as the quota engine holds it (settled and reserved spend, credit); empty when
     * the engine cannot say (unknown user, or an engine without this view). Used by {@code GET /v1/usage}.
     */
    default Optional<UsageSnapshot> usage(String userId, YearMonth month) {
        return Optional.empty();
    }

    /**
     * A key's service-credit spend in {@code month} (settled, plus open estimates where the engine counts them; ADR
     * 0081); empty when the gate cannot say. Used by {@code GET /v1/usage}'s {@code limits}.
     */
    default java.util.OptionalLong keySpend(String userId, String apiKeyId, YearMonth month) {
        return java.util.OptionalLong.empty();
    }

    /**
     * A tenant's service-credit spend in {@code month} (ADR 0081: settled plus open estimates while the engine counts
     * them); empty when the gate cannot say. Used by {@code GET /v1/usage}'s {@code limits} under a tenant budget.
     */
    default java.util.OptionalLong tenantSpend(String tenantId, YearMonth month) {
        return java.util.OptionalLong.empty();
    }

    /**
     * The admin API changed a tenant's budget on this edge (ADR 0081): forget what is cached of it, and when the budget
     * was created or removed ({@code createdOrRemoved}) the tenant's month spend too (not counted while it had none).
     */
    default void tenantBudgetChanged(String tenantId, boolean createdOrRemoved) {
    }

    /** True when decisions can be made (Redis reachable, or the breaker is open under a fail-open policy). */
    boolean isReady();

    /** The answer when the gate itself failed: QUOTA_UNAVAILABLE, retry after {@code retryAfter}. */
    static Decision unavailable(Duration retryAfter) {
        return new Decision(Route.REJECTED, RejectReason.QUOTA_UNAVAILABLE, null, null, null, 0, 0, List.of(),
                SoftLimitStatus.UNKNOWN, DecisionMode.FAIL_CLOSED, retryAfter);
    }

    /** Admitted without Redis, under the fail-open policy. */
    static boolean failOpen(Decision d) {
        return d.mode() == DecisionMode.FAIL_OPEN && d.admitted();
    }

}
