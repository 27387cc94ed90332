package dev.tokenmeter.edge.publish;

import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import dev.tokenmeter.events.serde.AvroSerde;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.validate.UsageEventValidator;
import org.apache.kafka.clients.producer.RecordMetadata;
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
 */
public final class SpoolingEventSink implements EventSink {

    private static final Logger LOG = LoggerFactory.getLogger(SpoolingEventSink.class);
    private static final int REPLAY_BATCH = 500;
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
                modeLock.notifyAll();
                return;
            }
            recordNumber = spool.append(serde.encode(event), true);
        }
        spool.awaitDurable(recordNumber);
    }

    @Override
    public boolean isReady() {
        return !spool.isFull() && !closing;
    }

    @Override
    public long pendingEvents() {
        synchronized (modeLock) {
            return queue.size() + inFlightCount + spool.pendingRecords();
        }
    }

    /** True while events go to the spool rather than straight to Kafka. */
    public boolean spooling() {
        synchronized (modeLock) {
            return mode == Mode.SPOOLING;
        }
    }

    /** Bytes in the spool's segment files. */
    public long spoolBytes() {
        return spool.bytes();
    }

    private void run() {
        try {
            while (true) {
                List<UsageEvent> batch = new ArrayList<>();
                Mode m;
                synchronized (modeLock) {
                    m = mode;
                    if (m == Mode.DIRECT) {
                        if (queue.isEmpty() && inFlight.isEmpty()) {
                            if (closing) {
                                return;
                            }
                            modeLock.wait(50);
                        }
                        while (!queue.isEmpty() && batch.size() < REPLAY_BATCH) {
                            batch.add(queue.poll());
                        }
                    }
                }
                if (m == Mode.DIRECT) {
                    sendDirect(batch);
                } else if (!replayOnce()) {
                    return;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            LOG.error("event sender stopped: {}", e.toString(), e);
            toSpool("the sender failed");
        }
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
        while (!inFlight.isEmpty() && inFlight.peek().acknowledged()) {
            inFlight.poll();
        }
        inFlightCount = inFlight.size();
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
                    appendAccepted(f.event());
                    moved++;
                }
            }
            for (UsageEvent e : queue) {
                appendAccepted(e);
                moved++;
            }
            inFlight.clear();
            queue.clear();
            inFlightCount = 0;
            if (mode != Mode.SPOOLING) {
                LOG.warn("usage events now go to the local spool {} ({}); {} unacknowledged events moved there",
                        spool.dir(), reason, moved);
            }
            mode = Mode.SPOOLING;
        }
    }

    private void appendAccepted(UsageEvent e) {
        try {
            // Already accepted from a caller: it must not be dropped, so the limit does not apply.
            spool.append(serde.encode(e), false);
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
        for (byte[] record : batch.records()) {
            CompletableFuture<RecordMetadata> ack = publisher.publish(serde.decode(record));
            acks.add(ack);
            if (ack.isCompletedExceptionally()) {
                break;
            }
        }
        for (CompletableFuture<RecordMetadata> ack : acks) {
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
                LOG.warn("replay of the event spool failed ({}); retrying in {} ms", failure(ack), REPLAY_BACKOFF.toMillis());
                if (closing && System.nanoTime() > closeDeadlineNanos) {
                    return false;
                }
                Thread.sleep(REPLAY_BACKOFF);
                return true;
            }
        }
        if (acks.size() < batch.records().size()) {
            return true;
        }
        spool.advance(batch.end(), batch.records().size());
        return true;
    }

    private static String failure(CompletableFuture<?> f) {
        try {
            f.join();
            return "none";
        } catch (RuntimeException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            return cause.getClass().getSimpleName() + ": " + cause.getMessage();
        }
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
