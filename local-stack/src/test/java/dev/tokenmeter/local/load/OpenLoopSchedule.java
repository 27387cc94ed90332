package dev.tokenmeter.local.load;

import java.time.Duration;

/**
 * When each request of an open-loop run is due: request {@code i} at {@code i × 1 s / rate} after the start, whatever
 * the earlier ones are doing, so a slow answer does not delay the next request (no coordinated omission). Its
 * latency is measured from this due time, not from when a thread got round to sending it.
 */
record OpenLoopSchedule(int ratePerSecond, Duration duration) {

    OpenLoopSchedule {
        if (ratePerSecond <= 0) {
            throw new IllegalArgumentException("rate must be > 0, was " + ratePerSecond);
        }
        if (duration.isNegative() || duration.isZero()) {
            throw new IllegalArgumentException("duration must be > 0, was " + duration);
        }
    }

    /** How many requests the run sends: {@code floor(rate × seconds)}, at least one. */
    long count() {
        return Math.max(1, Math.multiplyExact(duration.toMillis(), (long) ratePerSecond) / 1000);
    }

    /** Nanoseconds from the start at which request {@code i} is due; exact (no drift from adding a rounded interval). */
    long dueOffsetNanos(long i) {
        if (i < 0 || i >= count()) {
            throw new IndexOutOfBoundsException(i + " of " + count());
        }
        return Math.multiplyExact(i, 1_000_000_000L) / ratePerSecond;
    }
}
