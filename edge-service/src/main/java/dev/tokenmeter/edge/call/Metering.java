package dev.tokenmeter.edge.call;

import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.publish.EventSink;
import dev.tokenmeter.events.UsageEvent;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Instant;
import java.util.Objects;
import java.util.UUID;

/**
 * What every metered call shares — the quota gate, the event sink, the meters, the edge's name and clock — and
 * where calls start: {@link #start} for a call the edge makes now (the proxy, a metering reservation),
 * {@link #resume} for one whose reservation was made earlier (a metering commit). The proxy and the metering API
 * each hold one.
 */
public final class Metering {

    private static final Logger LOG = LoggerFactory.getLogger(Metering.class);

    private final QuotaGate quota;
    private final EventSink sink;
    private final CallMetrics metrics;
    private final String edgeInstance;
    private final Clock clock;

    public Metering(QuotaGate quota, EventSink sink, CallMetrics metrics, String edgeInstance, Clock clock) {
        this.quota = Objects.requireNonNull(quota, "quota");
        this.sink = Objects.requireNonNull(sink, "sink");
        this.metrics = Objects.requireNonNull(metrics, "metrics");
        this.edgeInstance = edgeInstance;
        this.clock = Objects.requireNonNull(clock, "clock");
    }

    /** A call starting now, with a fresh event id. */
    public MeteredCall start(Caller caller, String endpoint) {
        return start(caller, endpoint, clock.instant(), System.nanoTime());
    }

    /**
     * A call that began at {@code occurredAt} ({@code startNanos} on {@link System#nanoTime()}), before its caller was
     * known: the proxy takes the time when the request arrives, so the event's time and latency include the key check.
     */
    public MeteredCall start(Caller caller, String endpoint, Instant occurredAt, long startNanos) {
        return new MeteredCall(this, caller, endpoint, UUID.randomUUID().toString(), occurredAt, startNanos, null);
    }

    /** A call reserved earlier as {@code reservationId}, whose one event is {@code eventId}. */
    public MeteredCall resume(Caller caller, String endpoint, String eventId, Instant occurredAt, String reservationId) {
        return new MeteredCall(this, caller, endpoint, eventId, occurredAt, System.nanoTime(),
                Objects.requireNonNull(reservationId, "reservationId"));
    }

    /**
     * An async job's call (ADR 0083): its event id is the job id, its reservation (null when it was admitted without
     * one, fail-open) the one made when the job was queued; its latency counts from the worker's start.
     */
    public MeteredCall job(Caller caller, String endpoint, String jobId, Instant queuedAt, String reservationId) {
        return new MeteredCall(this, caller, endpoint, jobId, queuedAt, System.nanoTime(), reservationId);
    }

    /** False when the sink cannot take an event now: a call is then refused before anything is spent. */
    public boolean canRecord() {
        return sink.isReady();
    }

    /**
     * Hands an event built elsewhere (batch ingest) to the sink.
     *
     * @throws MeteredCall.SpoolFull the sink refused it durably; answer 503
     */
    public void submit(UsageEvent event) {
        try {
            sink.submit(event);
        } catch (EventSink.SpoolFullException e) {
            throw new MeteredCall.SpoolFull(e);
        }
    }

    /**
     * Waits until the events submitted so far are acknowledged by Kafka or durable in the spool ({@link
     * EventSink#awaitRecorded}); false when {@code timeout} passed first.
     */
    public boolean awaitRecorded(java.time.Duration timeout) {
        return sink.awaitRecorded(timeout);
    }

    /** Gives a reservation back; a failure is logged, not thrown (the reservation then expires in the engine). */
    public void releaseQuietly(String reservationId, String eventId) {
        try {
            quota.release(reservationId);
        } catch (RuntimeException e) {
            LOG.warn("releasing reservation {} of call {} failed: {}", reservationId, eventId, e.toString());
        }
    }

    void submitChecked(UsageEvent event) throws EventSink.SpoolFullException {
        sink.submit(event);
    }

    public QuotaGate quota() {
        return quota;
    }

    CallMetrics metrics() {
        return metrics;
    }

    String edgeInstance() {
        return edgeInstance;
    }

    /** Now, on the clock the events are stamped with. */
    public Instant now() {
        return clock.instant();
    }
}
