package dev.tokenmeter.edge.quota;

/**
 * The user's soft limit: {@code percent} of the monthly credit (the plan's {@code soft_limit_percent}) at
 * which the edge starts warning while calls still run on the service's credit; 100 % is the hard limit.
 * {@code reached}: the month's committed usage (settled + open reservations) is at or above it, or the
 * credit ran out for a call. {@code crossedNow}: this call reached it first in the month; true exactly
 * once per user and month (like the 50/80/100 % thresholds), even across edges.
 */
public record SoftLimitStatus(int percent, boolean reached, boolean crossedNow) {

    /** Not known (no Redis decision: rejected before the credit check, fail-open, or Redis unavailable). */
    public static final SoftLimitStatus UNKNOWN = new SoftLimitStatus(0, false, false);

    /** From a script's soft state: 0 below, 1 reached earlier, 2 crossed by this call. */
    static SoftLimitStatus of(int percent, long state) {
        return new SoftLimitStatus(percent, state > 0, state == 2);
    }
}
