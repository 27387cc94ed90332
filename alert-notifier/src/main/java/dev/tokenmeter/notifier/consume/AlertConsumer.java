package dev.tokenmeter.notifier.consume;

import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.notifier.delivery.Deliveries;
import dev.tokenmeter.notifier.delivery.RecordPosition;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.Deserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;

/**
 * Reads {@code usage-alerts} and hands each alert to {@link Deliveries} without waiting for it: a slow endpoint
 * never holds the poll loop. A partition's offset is committed up to (not past) its oldest alert whose outcomes are
 * not all recorded yet, so a restart resumes at the first unfinished alert and the delivery log's final rows skip the
 * finished ones. A record that is no UsageAlert is set aside (dead letter) and passed. Past
 * {@code maxPendingAlerts} unfinished alerts the consumer pauses its partitions until some finish.
 */
public final class AlertConsumer implements Runnable {

    private static final Logger log = LoggerFactory.getLogger(AlertConsumer.class);

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final String topic;
    private final Deserializer<UsageAlert> alerts;
    private final Deliveries deliveries;
    private final int maxPendingAlerts;
    /** Per partition, the alerts read and not yet committed, by offset. */
    private final Map<TopicPartition, TreeMap<Long, CompletableFuture<Void>>> pending = new HashMap<>();
    private volatile boolean running = true;

    public AlertConsumer(KafkaConsumer<byte[], byte[]> consumer, String topic, Deserializer<UsageAlert> alerts,
                         Deliveries deliveries, int maxPendingAlerts) {
        this.consumer = consumer;
        this.topic = topic;
        this.alerts = alerts;
        this.deliveries = deliveries;
        this.maxPendingAlerts = maxPendingAlerts;
    }

    @Override
    public void run() {
        consumer.subscribe(List.of(topic), new Rebalance());
        try {
            while (running) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    RecordPosition at = new RecordPosition(r.topic(), r.partition(), r.offset());
                    pending.computeIfAbsent(new TopicPartition(r.topic(), r.partition()), tp -> new TreeMap<>())
                            .put(r.offset(), handle(r, at));
                }
                commitFinished(null);
                flowControl();
            }
        } catch (WakeupException e) {
            if (running) {
                throw e;
            }
        } finally {
            try {
                commitFinished(null);
            } catch (RuntimeException e) {
                log.warn("last commit failed ({}); the unfinished alerts are read again after a restart", e.getClass().getSimpleName());
            }
            consumer.close();
        }
    }

    private CompletableFuture<Void> handle(ConsumerRecord<byte[], byte[]> r, RecordPosition at) {
        UsageAlert alert;
        try {
            alert = r.value() == null ? null : alerts.deserialize(r.topic(), r.value());
        } catch (RuntimeException e) {
            return deliveries.setAside(at, "not a UsageAlert: " + e.getClass().getSimpleName());
        }
        if (alert == null) {
            return deliveries.setAside(at, "empty record");
        }
        return deliveries.deliver(alert, at);
    }

    /** Commits each partition (or only {@code only}) up to its oldest unfinished alert. */
    private void commitFinished(Collection<TopicPartition> only) {
        Map<TopicPartition, OffsetAndMetadata> commits = new HashMap<>();
        for (var e : pending.entrySet()) {
            if (only != null && !only.contains(e.getKey())) {
                continue;
            }
            Long next = null;
            Iterator<Map.Entry<Long, CompletableFuture<Void>>> it = e.getValue().entrySet().iterator();
            while (it.hasNext()) {
                Map.Entry<Long, CompletableFuture<Void>> first = it.next();
                CompletableFuture<Void> f = first.getValue();
                // A delivery that failed (only when the notifier is stopping) is read again after the restart.
                if (!f.isDone() || f.isCompletedExceptionally()) {
                    break;
                }
                next = first.getKey() + 1;
                it.remove();
            }
            if (next != null) {
                commits.put(e.getKey(), new OffsetAndMetadata(next));
            }
        }
        if (!commits.isEmpty()) {
            consumer.commitSync(commits);
        }
    }

    private void flowControl() {
        int unfinished = pending.values().stream().mapToInt(Map::size).sum();
        if (unfinished >= maxPendingAlerts) {
            if (consumer.paused().isEmpty()) {
                log.warn("{} alerts unfinished (MAX_PENDING_ALERTS): pausing the consumer", unfinished);
            }
            consumer.pause(consumer.assignment());
        } else if (!consumer.paused().isEmpty()) {
            consumer.resume(consumer.paused());
        }
    }

    public void close() {
        running = false;
        consumer.wakeup();
    }

    /** On revocation: commit what is finished and forget the rest (the new owner reads it again). */
    private final class Rebalance implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            commitFinished(partitions);
            partitions.forEach(pending::remove);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
        }
    }
}
