package dev.tokenmeter.notifier.delivery;

import java.time.Duration;

/**
 * How deliveries are attempted: retried with exponential backoff (doubling from {@code backoffInitial} up to
 * {@code backoffMax}, up to 20 % jitter) until {@code retryFor} after the first attempt, each attempt bounded by the
 * two timeouts, at most {@code concurrencyPerEndpoint} requests in flight to one webhook.
 */
public record DeliveryPolicy(Duration retryFor, Duration backoffInitial, Duration backoffMax, Duration connectTimeout,
                             Duration requestTimeout, int concurrencyPerEndpoint) {

    /** The wait after the {@code failedAttempts}-th failed attempt (1 = after the first); {@code jitter} in [0, 1). */
    public Duration backoff(int failedAttempts, double jitter) {
        long base = backoffInitial.toMillis();
        long max = backoffMax.toMillis();
        int doublings = Math.min(Math.max(failedAttempts - 1, 0), 40);
        long wait = base;
        for (int i = 0; i < doublings && wait < max; i++) {
            wait *= 2;
        }
        wait = Math.min(wait, max);
        // Jitter only shortens (never past the maximum), so receivers that failed together are not retried together.
        return Duration.ofMillis(wait - (long) (wait * 0.2 * jitter));
    }
}
