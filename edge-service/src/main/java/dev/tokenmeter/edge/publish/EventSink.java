package dev.tokenmeter.edge.publish;

import dev.tokenmeter.events.UsageEvent;

import java.time.Duration;

/**
 * Where the edge hands every usage event. Implementations never drop an event silently: either it is
 * accepted (acknowledged by Kafka, or durably spooled to local disk for later replay), or
 * {@link #submit} throws {@link SpoolFullException} and the caller fails the request closed.
 */
public interface EventSink extends AutoCloseable {

    /** Accepts the event for at-least-once delivery to the usage-events topic. */
    void submit(UsageEvent event) throws SpoolFullException;

    /**
     * Waits until every event submitted before this call is acknowledged by Kafka or durable on local disk; false
     * when {@code timeout} passed first. A sink whose {@link #submit} returns only then has nothing to wait for.
     */
    default boolean awaitRecorded(Duration timeout) {
        return true;
    }

    /** True when Kafka is reachable or the spool can still take events. */
    boolean isReady();

    /** Events accepted but not yet acknowledged by Kafka (spooled or in flight). */
    long pendingEvents();

    /** Events Kafka refused for good, set aside (not sent) since this sink started; see ADR 0050. */
    default long setAsideEvents() {
        return 0;
    }

    /** True while events go to the local spool rather than straight to Kafka (Kafka away, or the spool replaying). */
    default boolean spooling() {
        return false;
    }

    /** Bytes in the local spool's files. */
    default long spoolBytes() {
        return 0;
    }

    /** Flushes everything accepted so far to Kafka, or to the spool if Kafka is away; then releases resources. */
    @Override
    void close();

    /** The local spool is at its configured limit; the edge answers 503 instead of losing the event. */
    final class SpoolFullException extends Exception {
        public SpoolFullException(String message) {
            super(message);
        }
    }
}
