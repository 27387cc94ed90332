package dev.tokenmeter.edge.quota;

import java.time.Duration;
import java.util.List;

/**
 * The answer to {@link QuotaEngine#reserve}. {@code reservationId} is null when rejected;
 * {@code thresholdsCrossed} lists 50/80/100 (percent of the monthly credit) newly crossed by this call,
 * each reported once per user and month; {@code retryAfter} is set when rejected for a rate limit or
 * QUOTA_UNAVAILABLE, else null.
 */
public record Decision(Route route, RejectReason rejectReason, String reservationId, RateLimitStatus requests,
                       RateLimitStatus tokens, long creditNanoUsd, long remainingCreditNanoUsd,
                       List<Integer> thresholdsCrossed, DecisionMode mode, Duration retryAfter) {

    public boolean admitted() {
        return route != Route.REJECTED;
    }
}
