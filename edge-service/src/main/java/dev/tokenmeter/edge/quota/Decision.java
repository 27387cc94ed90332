package dev.tokenmeter.edge.quota;

import java.time.Duration;
import java.util.List;

/**
 * The answer to {@link QuotaEngine#reserve}. {@code reservationId} is null when rejected;
 * {@code thresholdsCrossed} lists 50/80/100 (percent of the monthly credit) newly crossed by this call,
 * each reported once per user and month; {@code softLimit} says whether the user's soft limit is reached
 * (a warning to pass on with every response while it is) and whether this call crossed it first this
 * month (an alert, once); {@code retryAfter} is set when rejected for a rate limit or QUOTA_UNAVAILABLE,
 * else null. The hard limit is the credit itself: past it a call goes to the user's own key
 * (PERSONAL_KEY) or is rejected (CREDIT_EXHAUSTED).
 */
public record Decision(Route route, RejectReason rejectReason, String reservationId, RateLimitStatus requests,
                       RateLimitStatus tokens, long creditNanoUsd, long remainingCreditNanoUsd,
                       List<Integer> thresholdsCrossed, SoftLimitStatus softLimit, DecisionMode mode, Duration retryAfter) {

    public boolean admitted() {
        return route != Route.REJECTED;
    }
}
