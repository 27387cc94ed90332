package dev.tokenmeter.edge.publish;

import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An {@link EventSink} straight onto Kafka through {@link UsageEventPublisher} (idempotent producer,
 * {@code acks=all}), without a local spool: the interim sink until {@code SpoolingEventSink} is wired, and the
 * reference sink in tests. Sends are asynchronous so the call path does not wait for the broker; a failed send
 * marks the sink not ready (the edge then answers 503 instead of taking calls it cannot record) and is logged
 * with its event id. It refuses new events while not ready, so it never pretends to have accepted one.
 */
public final class KafkaEventSink implements EventSink {

    private static final Logger LOG = LoggerFactory.getLogger(KafkaEventSink.class);

    private final UsageEventPublisher publisher;
    private final AtomicLong pending = new AtomicLong();
    private final AtomicBoolean healthy = new AtomicBoolean(true);

    public KafkaEventSink(UsageEventPublisher publisher) {
        this.publisher = publisher;
    }

    @Override
    public void submit(UsageEvent event) throws SpoolFullException {
        if (!healthy.get()) {
            throw new SpoolFullException("Kafka is unavailable and this sink has no spool");
        }
        pending.incrementAndGet();
        publisher.publish(event).whenComplete((metadata, error) -> {
            pending.decrementAndGet();
            if (error != null) {
                healthy.set(false);
                LOG.error("usage event {} was not acknowledged by Kafka: {}", event.getEventId(), error.toString());
            } else {
                healthy.set(true);
            }
        });
    }

    @Override
    public boolean isReady() {
        return healthy.get();
    }

    @Override
    public long pendingEvents() {
        return pending.get();
    }

    @Override
    public void close() {
        publisher.flush();
        publisher.close();
    }
}
