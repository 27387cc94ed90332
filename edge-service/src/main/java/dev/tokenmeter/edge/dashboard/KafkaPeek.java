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
 * (READ), ADR 0082; and, on an admin client, the aggregator group's committed offsets (DESCRIBE on that group).
 * KafkaConsumer is not thread-safe: every read holds this object's lock and is bounded in time.
 */
final class KafkaPeek implements AutoCloseable {

    private static final Duration API_TIMEOUT = Duration.ofSeconds(5);
    private static final Duration TAIL_TIMEOUT = Duration.ofSeconds(3);

    private final Map<String, Object> props;
    private final Map<String, Object> adminProps;
    private org.apache.kafka.clients.admin.Admin admin;
    private final TopicSpec<String, UsageAlert> alerts;
    private KafkaConsumer<byte[], byte[]> consumer;

    KafkaPeek(KafkaClientSettings kafka, TopicSpec<String, UsageAlert> alerts) {
        this.props = new HashMap<>(kafka.clientProperties());
        this.adminProps = new HashMap<>(kafka.clientProperties());
        adminProps.put(org.apache.kafka.clients.admin.AdminClientConfig.CLIENT_ID_CONFIG, "edge-dashboard-admin");
        adminProps.put(org.apache.kafka.clients.admin.AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) API_TIMEOUT.toMillis());
        adminProps.put(org.apache.kafka.clients.admin.AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) API_TIMEOUT.toMillis());
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

    /** The offsets a consumer group committed (none for a partition it never committed); throws when refused. */
    synchronized Map<TopicPartition, Long> committedOffsets(String groupId) {
        if (admin == null) {
            admin = org.apache.kafka.clients.admin.Admin.create(adminProps);
        }
        try {
            Map<TopicPartition, Long> offsets = new HashMap<>();
            admin.listConsumerGroupOffsets(groupId).partitionsToOffsetAndMetadata()
                    .get(API_TIMEOUT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)
                    .forEach((tp, om) -> {
                        if (om != null) {
                            offsets.put(tp, om.offset());
                        }
                    });
            return offsets;
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException("offsets of group " + groupId + ": " + e.getCause(), e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("offsets of group " + groupId + ": timed out", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** The topic's partitions. */
    synchronized List<TopicPartition> partitions(String topic) {
        List<TopicPartition> parts = new ArrayList<>();
        for (PartitionInfo p : consumer().partitionsFor(topic, API_TIMEOUT)) {
            parts.add(new TopicPartition(p.topic(), p.partition()));
        }
        return parts;
    }

    /** Beginning offsets of these partitions. */
    synchronized Map<TopicPartition, Long> beginningOffsets(Collection<TopicPartition> partitions) {
        return consumer().beginningOffsets(partitions, API_TIMEOUT);
    }

    /** Records a topic holds now (end minus beginning offsets, summed over its partitions). */
    synchronized long recordCount(String topic) {
        KafkaConsumer<byte[], byte[]> c = consumer();
        List<TopicPartition> parts = partitions(topic);
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
        List<TopicPartition> parts = partitions(alerts.name());
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
        if (admin != null) {
            admin.close(Duration.ofSeconds(2));
        }
    }
}
