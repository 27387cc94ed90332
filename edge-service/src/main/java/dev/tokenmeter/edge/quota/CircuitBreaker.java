package dev.tokenmeter.edge.quota;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * Consecutive-failure breaker around Redis: {@code threshold} failures in a row open it; after
 * {@code openDuration} one caller is let through as a probe (half-open); a success closes it, a
 * failure opens it again.
 */
final class CircuitBreaker {

    enum State { CLOSED, OPEN, HALF_OPEN }

    private final int threshold;
    private final long openNanos;
    private final LongSupplier nanoTime;
    private final AtomicInteger failures = new AtomicInteger();
    private final AtomicLong openedAt = new AtomicLong();
    private volatile State state = State.CLOSED;

    CircuitBreaker(int threshold, Duration openDuration, LongSupplier nanoTime) {
        this.threshold = threshold;
        this.openNanos = openDuration.toNanos();
        this.nanoTime = nanoTime;
    }

    /** True when the caller may try Redis. */
    boolean allow() {
        State s = state;
        if (s == State.CLOSED) return true;
        if (s == State.OPEN && nanoTime.getAsLong() - openedAt.get() >= openNanos) {
            synchronized (this) {
                if (state == State.OPEN) {
                    state = State.HALF_OPEN;
                    return true; // the one probe
                }
            }
        }
        return false;
    }

    void onSuccess() {
        failures.set(0);
        if (state != State.CLOSED) {
            synchronized (this) { state = State.CLOSED; }
        }
    }

    void onFailure() {
        int n = failures.incrementAndGet();
        synchronized (this) {
            if (state == State.HALF_OPEN || (state == State.CLOSED && n >= threshold)) {
                state = State.OPEN;
                openedAt.set(nanoTime.getAsLong());
            }
        }
    }

    State state() {
        return state;
    }
}
