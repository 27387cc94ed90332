package dev.tokenmeter.edge.dashboard;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.topic.TopicSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The dashboard's reads of Kafka, on one consumer without a consumer group (assigned partitions only, nothing
 * committed): the end offsets of the topics the billing sink reads (DESCRIBE) and the tail of the alerts topic
 * (READ), ADR 0082. KafkaConsumer is not thread-safe: every read holds this object's lock and is bounded in time.
 */
final class KafkaPeek implements AutoCloseable {

    private static final Duration API_TIMEOUT = Duration.ofSeconds(5);
    private static final Duration TAIL_TIMEOUT = Duration.ofSeconds(3);

    private final Map<String, Object> props;
    private final TopicSpec<String, UsageAlert> alerts;
    private KafkaConsumer<byte[], byte[]> consumer;

    KafkaPeek(KafkaClientSettings kafka, TopicSpec<String, UsageAlert> alerts) {
        this.props = new HashMap<>(kafka.clientProperties());
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "edge-dashboard");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) API_TIMEOUT.toMillis());
        props.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) API_TIMEOUT.toMillis());
        this.alerts = alerts;
    }

    private KafkaConsumer<byte[], byte[]> consumer() {
        if (consumer == null) {
            consumer = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        }
        return consumer;
    }

    /** End offsets (the next offset to be written) of these partitions; throws when the broker refuses. */
    synchronized Map<TopicPartition, Long> endOffsets(Collection<TopicPartition> partitions) {
        return consumer().endOffsets(partitions, API_TIMEOUT);
    }

    /**
     * Whether a record (not a transaction marker) sits at or after {@code from} and before {@code end}: a
     * transactional producer's commit marker takes an offset after its last record, so a consumer that has read
     * everything stays one offset short of the end on every partition the aggregator wrote (exactly_once_v2).
     * Bounded by one second; when it cannot tell, it says yes.
     */
    synchronized boolean hasRecordBetween(TopicPartition tp, long from, long end) {
        KafkaConsumer<byte[], byte[]> c = consumer();
        c.assign(List.of(tp));
        try {
            c.seek(tp, from);
            Instant deadline = Instant.now().plusSeconds(1);
            while (Instant.now().isBefore(deadline)) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                    if (r.offset() < end) {
                        return true;
                    }
                }
                if (c.position(tp) >= end) {
                    return false;
                }
            }
            return true;
        } finally {
            c.unsubscribe();
        }
    }

    /** Records a topic holds now (end minus beginning offsets, summed over its partitions). */
    synchronized long recordCount(String topic) {
        KafkaConsumer<byte[], byte[]> c = consumer();
        List<TopicPartition> parts = new ArrayList<>();
        for (PartitionInfo p : c.partitionsFor(topic, API_TIMEOUT)) {
            parts.add(new TopicPartition(p.topic(), p.partition()));
        }
        Map<TopicPartition, Long> begin = c.beginningOffsets(parts, API_TIMEOUT);
        Map<TopicPartition, Long> end = c.endOffsets(parts, API_TIMEOUT);
        long n = 0;
        for (TopicPartition tp : parts) {
            n += end.get(tp) - begin.get(tp);
        }
        return n;
    }

    /** Up to {@code limit} alerts from the end of each partition of the alerts topic, newest first, by alert id once. */
    synchronized List<UsageAlert> recentAlerts(int limit) {
        KafkaConsumer<byte[], byte[]> c = consumer();
        List<TopicPartition> parts = new ArrayList<>();
        for (PartitionInfo p : c.partitionsFor(alerts.name(), API_TIMEOUT)) {
            parts.add(new TopicPartition(p.topic(), p.partition()));
        }
        c.assign(parts);
        Map<TopicPartition, Long> begin = c.beginningOffsets(parts, API_TIMEOUT);
        Map<TopicPartition, Long> end = c.endOffsets(parts, API_TIMEOUT);
        for (TopicPartition tp : parts) {
            c.seek(tp, Math.max(begin.get(tp), end.get(tp) - limit));
        }
        Map<String, UsageAlert> byId = new HashMap<>();
        Instant deadline = Instant.now().plus(TAIL_TIMEOUT);
        try {
            while (Instant.now().isBefore(deadline) && parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    UsageAlert a;
                    try {
                        a = alerts.valueSerde().deserializer().deserialize(r.topic(), r.value());
                    } catch (RuntimeException e) {
                        continue; // not an alert (the notifier dead-letters it); the dashboard shows alerts only
                    }
                    if (a != null) {
                        byId.merge(a.getAlertId(), a, (x, y) -> x.getCrossedAt().isBefore(y.getCrossedAt()) ? x : y);
                    }
                }
            }
        } finally {
            c.unsubscribe();
        }
        return byId.values().stream()
                .sorted((x, y) -> y.getCrossedAt().compareTo(x.getCrossedAt()))
                .limit(limit).toList();
    }

    @Override
    public synchronized void close() {
        if (consumer != null) {
            consumer.close(Duration.ofSeconds(2));
        }
    }
}
