package dev.tokenmeter.edge.publish;

import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import dev.tokenmeter.events.serde.AvroSerde;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.validate.UsageEventValidator;
import dev.tokenmeter.events.validate.InvalidUsageEventException;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.SerializationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The edge's {@link EventSink}: Kafka first, a durable local {@link Spool} when Kafka is away, never a silent drop.
 * See docs/adr/0050-edge-spool.md.
 *
 * <ul>
 *   <li><b>Direct</b> (Kafka healthy, spool empty): {@link #submit} queues the event in memory and returns; one
 *   sender thread hands it to the idempotent {@code acks=all} producer ({@link UsageEventPublisher}: key = user id,
 *   record timestamp = occurredAt). This keeps the call path free of disk and network waits.</li>
 *   <li>When a send fails, or the oldest unacknowledged send is older than the send timeout, the sink switches to
 *   <b>spooling</b>: every unacknowledged and queued event is written to the spool in submit order, and from then
 *   on {@link #submit} appends to the spool and returns only after the group fsync covering the event.</li>
 *   <li>The sender thread <b>replays</b> the spool in order, in batches, waiting for every acknowledgement before it
 *   moves past a batch (a failed batch is re-sent; the ledger dedups by event id, so a duplicate is harmless). A
 *   segment is deleted only when every record in it was acknowledged. When the spool is empty the sink goes back
 *   to direct.</li>
 *   <li>A spool at {@code SPOOL_MAX_BYTES} refuses new events with {@link SpoolFullException} (the edge answers
 *   503); {@link #isReady()} is false then.</li>
 *   <li>{@link #close()} sends what is queued and waits for the acknowledgements (bounded); what Kafka did not
 *   take by then is written to the spool, which the next start replays.</li>
 * </ul>
 *
 * <p>Crash window: in direct mode an event accepted by {@link #submit} but not yet acknowledged by Kafka (the
 * in-memory queue plus the producer's linger and round trip, normally a few milliseconds) is lost if the process
 * is killed (SIGKILL, power loss) in that window. A graceful shutdown loses nothing. The ADR explains why this is
 * accepted and what the write-ahead alternative costs.
 *
 * <p>Why one class of ~450 lines (issue 15 asks for the reason): it is one state machine (direct, spooling,
 * replaying, closing) driven by one sender thread, and every transition moves the same events, in submit order,
 * between the same three places: the in-memory queue (under the mode lock, shared with {@link #submit}), the
 * unacknowledged sends (the sender thread's own) and the spool. The order and the no-silent-drop promise hold only
 * if each transition sees all three; split by mode, the classes would share that lock and state and the
 * transitions would be spread over them. The parts without a share in it
 * are apart: the durable log ({@link Spool}, {@link SpoolRecords}) and the Kafka producer ({@code
 * UsageEventPublisher}, {@link ReliableProducers}).
 */
public final class SpoolingEventSink implements EventSink {

    private static final Logger LOG = LoggerFactory.getLogger(SpoolingEventSink.class);
    private static final int REPLAY_BATCH = 500;
    /** A generous size of one spooled event (they are ~300 bytes), for the readiness headroom. */
    private static final long ASSUMED_EVENT_BYTES = 512;
    private static final Duration REPLAY_BACKOFF = Duration.ofMillis(500);

    private enum Mode { DIRECT, SPOOLING }

    private record InFlight(UsageEvent event, CompletableFuture<RecordMetadata> ack, long sentAtNanos) {
        boolean acknowledged() {
            return ack.isDone() && !ack.isCompletedExceptionally();
        }
    }

    private final UsageEventPublisher publisher;
    private final Spool spool;
    private final AvroSerde<UsageEvent> serde = EventSerdes.usageEvent();
    private final long sendTimeoutNanos;
    private final int maxQueuedEvents;
    private final Duration closeTimeout;
    private final Thread sender;

    private final Object modeLock = new Object();
    // Guarded by modeLock.
    private Mode mode;
    private final ArrayDeque<UsageEvent> queue = new ArrayDeque<>();
    private boolean accepting = true;
    // Sender thread only.
    private final ArrayDeque<InFlight> inFlight = new ArrayDeque<>();
    private volatile boolean closing;
    private volatile long closeDeadlineNanos;
    private volatile int inFlightCount;
    private final AtomicLong setAside = new AtomicLong();
    // Guarded by modeLock (awaitRecorded): events queued in direct mode, how many of them (a prefix, in submit order)
    // are recorded — acknowledged by Kafka or moved to the spool — and the spool record of the last one moved there.
    private long directSubmitted;
    private long directRecorded;
    private long spooledThroughRecord;

    private SpoolingEventSink(Builder b) {
        this.publisher = b.publisher;
        this.spool = Spool.open(b.spoolDir, b.maxBytes, b.fsyncInterval);
        this.sendTimeoutNanos = b.sendTimeout.toNanos();
        this.maxQueuedEvents = b.maxQueuedEvents;
        this.closeTimeout = b.closeTimeout;
        this.mode = spool.pendingRecords() > 0 ? Mode.SPOOLING : Mode.DIRECT;
        this.sender = Thread.ofPlatform().name("usage-event-sender").daemon().unstarted(this::run);
        sender.start();
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public void submit(UsageEvent event) throws SpoolFullException {
        // An event Kafka would refuse must be refused here, not found later in the spool.
        UsageEventValidator.requireValid(event);
        long recordNumber;
        synchronized (modeLock) {
            if (!accepting) {
                throw new IllegalStateException("the event sink is closed");
            }
            if (mode == Mode.DIRECT) {
                if (queue.size() >= maxQueuedEvents) {
                    throw new SpoolFullException("the in-memory event queue is full (" + maxQueuedEvents + " events)");
                }
                queue.add(event);
                directSubmitted++;
                modeLock.notifyAll();
                return;
            }
            recordNumber = spool.append(serde.encode(event), true);
        }
        spool.awaitDurable(recordNumber);
    }

    /**
     * Waits until every event submitted before this call is recorded: acknowledged by Kafka, or fsync'd in the spool
     * (an event submitted while spooling is, when {@link #submit} returns). Closes the direct mode's crash window for
     * a caller that must not act before its event is safe — an async job is acknowledged on its stream only after this
     * (ADR 0083): killed in between, the job runs again under the same event id rather than go unbilled.
     *
     * @return false when {@code timeout} passed first (the event is still in memory, on its way)
     */
    @Override
    public boolean awaitRecorded(Duration timeout) {
        long deadlineNanos = System.nanoTime() + timeout.toNanos();
        long spoolRecord;
        synchronized (modeLock) {
            long target = directSubmitted;
            while (directRecorded < target) {
                long leftMs = TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
                if (leftMs <= 0) {
                    return false;
                }
                try {
                    modeLock.wait(leftMs);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
            spoolRecord = spooledThroughRecord;
        }
        if (spoolRecord > 0) {
            spool.awaitDurable(spoolRecord); // bounded: the spool's group fsync, or its close
        }
        return true;
    }

    @Override
    public boolean isReady() {
        // Not ready a little before full: calls under way keep room for their events, and so do events still in
        // memory, which move to the spool (past the limit, they were accepted) if Kafka turns out to be away.
        long unspooled;
        synchronized (modeLock) {
            unspooled = queue.size() + inFlightCount;
        }
        return !closing && !spool.isNearlyFull(unspooled * ASSUMED_EVENT_BYTES);
    }

    @Override
    public long pendingEvents() {
        synchronized (modeLock) {
            return queue.size() + inFlightCount + spool.pendingRecords();
        }
    }

    /** True while events go to the spool rather than straight to Kafka. */
    @Override
    public boolean spooling() {
        synchronized (modeLock) {
            return mode == Mode.SPOOLING;
        }
    }

    /** Bytes in the spool's segment files. */
    @Override
    public long spoolBytes() {
        return spool.bytes();
    }

    private void run() {
        while (true) {
            try {
                if (!step()) {
                    return;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException e) {
                // Never let the sender die: keep what is unacknowledged on disk and try again shortly.
                LOG.error("event sender failed; events stay in the spool and are retried: {}", e.toString(), e);
                toSpool("the sender failed");
                if (closing && System.nanoTime() > closeDeadlineNanos) {
                    return;
                }
                LockSupport.parkNanos(REPLAY_BACKOFF.toNanos());
            }
        }
    }

    /** One round of the sender; false when it should stop. */
    private boolean step() throws InterruptedException {
        List<UsageEvent> batch = new ArrayList<>();
        Mode m;
        synchronized (modeLock) {
            m = mode;
            if (m == Mode.DIRECT) {
                if (queue.isEmpty() && inFlight.isEmpty()) {
                    if (closing) {
                        return false;
                    }
                    modeLock.wait(50);
                }
                while (!queue.isEmpty() && batch.size() < REPLAY_BATCH) {
                    batch.add(queue.poll());
                }
                // Taken from the queue but not yet handed to the producer: still pending, never invisible.
                inFlightCount = inFlight.size() + batch.size();
            }
        }
        if (m == Mode.DIRECT) {
            sendDirect(batch);
            return true;
        }
        return replayOnce();
    }

    private void sendDirect(List<UsageEvent> batch) throws InterruptedException {
        CompletableFuture<RecordMetadata> failedFast = null;
        for (UsageEvent e : batch) {
            // Once a send failed at once (no metadata: Kafka unreachable), the rest would each block max.block.ms;
            // they are marked failed unsent and go to the spool in order with it.
            CompletableFuture<RecordMetadata> ack = failedFast != null ? failedFast : publisher.publish(e);
            if (failedFast == null && ack.isCompletedExceptionally()) {
                failedFast = ack;
            }
            inFlight.add(new InFlight(e, ack, System.nanoTime()));
        }
        inFlightCount = inFlight.size();
        int acknowledged = 0;
        while (!inFlight.isEmpty() && inFlight.peek().acknowledged()) {
            inFlight.poll();
            acknowledged++;
        }
        inFlightCount = inFlight.size();
        if (acknowledged > 0) {
            synchronized (modeLock) {
                directRecorded += acknowledged;
                modeLock.notifyAll();
            }
        }
        InFlight head = inFlight.peek();
        if (head == null) {
            return;
        }
        long now = System.nanoTime();
        if (head.ack().isCompletedExceptionally()) {
            toSpool("a send failed: " + failure(head.ack()));
        } else if (now - head.sentAtNanos() > sendTimeoutNanos) {
            toSpool("Kafka did not acknowledge within " + Duration.ofNanos(sendTimeoutNanos).toMillis() + " ms");
        } else if (closing && now > closeDeadlineNanos) {
            toSpool("shutting down before Kafka acknowledged");
        } else if (batch.isEmpty()) {
            // Wait for the oldest ack a little rather than spin.
            try {
                head.ack().get(2, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.ExecutionException | TimeoutException ignored) {
                // Looked at on the next round.
            }
        }
    }

    /** Writes every unacknowledged and queued event to the spool, in submit order, and switches to spooling. */
    private void toSpool(String reason) {
        synchronized (modeLock) {
            int moved = 0;
            for (InFlight f : inFlight) {
                if (!f.acknowledged()) {
                    spooledThroughRecord = appendAccepted(f.event());
                    moved++;
                }
            }
            for (UsageEvent e : queue) {
                spooledThroughRecord = appendAccepted(e);
                moved++;
            }
            inFlight.clear();
            queue.clear();
            inFlightCount = 0;
            directRecorded = directSubmitted;
            modeLock.notifyAll();
            if (mode != Mode.SPOOLING) {
                LOG.warn("usage events now go to the local spool {} ({}); {} unacknowledged events moved there",
                        spool.dir(), reason, moved);
            }
            mode = Mode.SPOOLING;
        }
    }

    private long appendAccepted(UsageEvent e) {
        try {
            // Already accepted from a caller: it must not be dropped, so the limit does not apply.
            return spool.append(serde.encode(e), false);
        } catch (SpoolFullException impossible) {
            throw new IllegalStateException(impossible);
        }
    }

    /** One replay round; false when the sender should stop (closing and past the deadline). */
    private boolean replayOnce() throws InterruptedException {
        Spool.Batch batch = spool.peek(REPLAY_BATCH);
        if (batch.isEmpty()) {
            synchronized (modeLock) {
                if (spool.resetIfDrained()) {
                    mode = Mode.DIRECT;
                    LOG.info("event spool drained; usage events go straight to Kafka again");
                    return true;
                }
            }
            return !closing;
        }
        List<CompletableFuture<RecordMetadata>> acks = new ArrayList<>(batch.records().size());
        String undecodable = null;
        for (byte[] record : batch.records()) {
            UsageEvent event;
            try {
                event = serde.decode(record);
            } catch (RuntimeException e) {
                undecodable = "undecodable: " + e;
                break;
            }
            CompletableFuture<RecordMetadata> ack = publisher.publish(event);
            acks.add(ack);
            if (ack.isCompletedExceptionally()) {
                break;
            }
        }
        for (int i = 0; i < acks.size(); i++) {
            CompletableFuture<RecordMetadata> ack = acks.get(i);
            while (!ack.isDone()) {
                if (closing && System.nanoTime() > closeDeadlineNanos) {
                    return false;
                }
                try {
                    ack.get(100, TimeUnit.MILLISECONDS);
                } catch (java.util.concurrent.ExecutionException | TimeoutException ignored) {
                    // Checked below.
                }
            }
            if (ack.isCompletedExceptionally()) {
                if (refusedForGood(cause(ack))) {
                    // Retrying cannot help, and everything behind it would wait forever: set it aside, go on.
                    setAside(batch, i, failure(ack));
                    return true;
                }
                LOG.warn("replay of the event spool failed ({}); retrying in {} ms", failure(ack), REPLAY_BACKOFF.toMillis());
                if (closing && System.nanoTime() > closeDeadlineNanos) {
                    return false;
                }
                Thread.sleep(REPLAY_BACKOFF);
                return true;
            }
        }
        if (undecodable != null) {
            setAside(batch, acks.size(), undecodable);
            return true;
        }
        if (acks.size() < batch.records().size()) {
            return true;
        }
        spool.advance(batch.end(), batch.records().size());
        return true;
    }

    /**
     * Record {@code index} of the batch is refused for good; every record before it was acknowledged. It goes to
     * {@code SPOOL_DIR/rejected/} with its reason (durably), then the cursor moves past it (issue 14, finding 1).
     * Records after it that were already sent are sent again by the next round (duplicates are harmless: the ledger
     * and the aggregator dedup by event id).
     */
    private void setAside(Spool.Batch batch, int index, String reason) {
        byte[] record = batch.records().get(index);
        Path file = spool.setAside(record, reason);
        spool.advance(batch.ends().get(index), index + 1);
        setAside.incrementAndGet();
        // The reason names the field and the limit, never more than an escaped excerpt of a value, never a key.
        LOG.error("a usage event Kafka refuses for good was set aside to {} ({} bytes): {}; replay goes on", file,
                record.length, reason);
    }

    /** Kafka (or the contract) refuses this record whatever happens: retrying it would block the spool forever. */
    static boolean refusedForGood(Throwable t) {
        return t instanceof RecordTooLargeException
                || t instanceof RecordBatchTooLargeException
                || t instanceof InvalidRecordException
                || t instanceof SerializationException
                || t instanceof InvalidUsageEventException;
    }

    private static Throwable cause(CompletableFuture<?> f) {
        try {
            f.join();
            return null;
        } catch (RuntimeException e) {
            return e.getCause() == null ? e : e.getCause();
        }
    }

    @Override
    public long setAsideEvents() {
        return setAside.get();
    }

    private static String failure(CompletableFuture<?> f) {
        Throwable cause = cause(f);
        return cause == null ? "none" : cause.getClass().getSimpleName() + ": " + cause.getMessage();
    }

    /**
     * Stops accepting events, sends what is queued and waits (at most the close timeout) for Kafka's
     * acknowledgements, replaying the spool meanwhile; what is still unacknowledged then stays in (or goes to) the
     * spool on disk, fsync'd, for the next start. Then closes the producer.
     */
    @Override
    public void close() {
        synchronized (modeLock) {
            if (!accepting) {
                return;
            }
            accepting = false;
            closeDeadlineNanos = System.nanoTime() + closeTimeout.toNanos();
            closing = true;
            modeLock.notifyAll();
        }
        try {
            sender.join(closeTimeout.plusSeconds(5).toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (sender.isAlive()) {
            LOG.error("event sender did not stop within {}", closeTimeout);
        }
        boolean leftInMemory;
        synchronized (modeLock) {
            leftInMemory = !queue.isEmpty() || !inFlight.isEmpty();
        }
        if (!sender.isAlive() && leftInMemory) {
            // Anything the sender had not seen acknowledged goes to disk before the process ends.
            toSpool("shutting down");
        }
        long left = spool.pendingRecords();
        spool.close();
        publisher.close();
        if (left > 0) {
            LOG.warn("{} usage events stay in the spool {} and are replayed at the next start", left, spool.dir());
        }
    }

    public static final class Builder {
        private UsageEventPublisher publisher;
        private Path spoolDir;
        private long maxBytes = 1L << 30;
        private Duration fsyncInterval = Duration.ofMillis(2);
        private Duration sendTimeout = Duration.ofSeconds(2);
        private Duration closeTimeout = Duration.ofSeconds(15);
        private int maxQueuedEvents = 100_000;

        public Builder publisher(UsageEventPublisher v) { this.publisher = v; return this; }
        public Builder spoolDir(Path v) { this.spoolDir = v; return this; }
        /** SPOOL_MAX_BYTES: past it, submit throws {@link SpoolFullException}. */
        public Builder maxBytes(long v) { this.maxBytes = v; return this; }
        /** SPOOL_FSYNC_INTERVAL: group-commit interval of the spool. */
        public Builder fsyncInterval(Duration v) { this.fsyncInterval = v; return this; }
        /** SPOOL_SEND_TIMEOUT: an unacknowledged send older than this switches the sink to the spool. */
        public Builder sendTimeout(Duration v) { this.sendTimeout = v; return this; }
        public Builder closeTimeout(Duration v) { this.closeTimeout = v; return this; }
        public Builder maxQueuedEvents(int v) { this.maxQueuedEvents = v; return this; }

        public SpoolingEventSink build() {
            if (publisher == null || spoolDir == null) {
                throw new IllegalStateException("publisher and spoolDir are required");
            }
            return new SpoolingEventSink(this);
        }
    }
}
