package dev.tokenmeter.edge.publish;

import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An {@link EventSink} straight onto Kafka through {@link UsageEventPublisher} (idempotent producer,
 * {@code acks=all}), without a local spool: the interim sink until {@code SpoolingEventSink} is wired, and the
 * reference sink in tests.
 *
 * <p>{@link #submit} only queues the event (bounded); one thread hands queued events to the producer, so the
 * call path never pays for serialisation or the producer's locks. A full queue is refused with
 * {@link SpoolFullException}, and a send the broker did not acknowledge marks the sink not ready (the edge then
 * answers 503 instead of taking calls it cannot record) and is logged with its event id. Without a spool an
 * event in memory is lost if the process dies, which is what {@code SpoolingEventSink} fixes.
 */
public final class KafkaEventSink implements EventSink {

    private static final Logger LOG = LoggerFactory.getLogger(KafkaEventSink.class);

    private final UsageEventPublisher publisher;
    private final ExecutorService sender;
    private final AtomicLong pending = new AtomicLong();
    private final AtomicBoolean healthy = new AtomicBoolean(true);

    public KafkaEventSink(UsageEventPublisher publisher) {
        this(publisher, 100_000);
    }

    public KafkaEventSink(UsageEventPublisher publisher, int maxQueuedEvents) {
        this.publisher = publisher;
        this.sender = new ThreadPoolExecutor(1, 1, 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(maxQueuedEvents), r -> {
            Thread t = new Thread(r, "usage-event-sender");
            t.setDaemon(true);
            return t;
        });
    }

    @Override
    public void submit(UsageEvent event) throws SpoolFullException {
        if (!healthy.get()) {
            throw new SpoolFullException("Kafka is unavailable and this sink has no spool");
        }
        pending.incrementAndGet();
        try {
            sender.execute(() -> publisher.publish(event).whenComplete((metadata, error) -> {
                pending.decrementAndGet();
                if (error != null) {
                    healthy.set(false);
                    LOG.error("usage event {} was not acknowledged by Kafka: {}", event.getEventId(), error.toString());
                } else {
                    healthy.set(true);
                }
            }));
        } catch (RejectedExecutionException e) {
            pending.decrementAndGet();
            throw new SpoolFullException("the in-memory event queue is full");
        }
    }

    @Override
    public boolean isReady() {
        return healthy.get();
    }

    @Override
    public long pendingEvents() {
        return pending.get();
    }

    /** Hands every queued event to the producer, waits for the acknowledgements, then closes the producer. */
    @Override
    public void close() {
        sender.shutdown();
        try {
            if (!sender.awaitTermination(30, TimeUnit.SECONDS)) {
                LOG.error("{} usage events were still queued at shutdown", pending.get());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        publisher.flush();
        publisher.close();
    }
}
