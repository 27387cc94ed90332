package dev.tokenmeter.sink;

import io.micrometer.core.instrument.binder.kafka.KafkaClientMetrics;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.jooq.DSLContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * One consumer feeding one {@link BatchWriter}: poll, write the batch and its positions in one database
 * transaction, then (for lag monitoring only) commit the same offsets to Kafka.
 *
 * <p>Positions come from Postgres: on assignment the consumer seeks to the stored next offsets, or to
 * the beginning for a partition this group never wrote. When a write fails (Postgres down), every
 * assigned partition is paused and the same batch is retried with capped exponential backoff while
 * {@code poll()} keeps the consumer in its group; nothing is skipped and nothing crashes.
 */
final class SinkLoop implements Runnable, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(SinkLoop.class);

    private final String name;
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final List<String> topics;
    private final BatchWriter writer;
    private final OffsetStore offsets;
    private final DSLContext db;
    private final SinkMetrics metrics;
    private final Duration backoffMax;
    /** Assigned partitions whose stored position could not be read yet; they stay paused until it is. */
    private final Set<TopicPartition> unpositioned = new HashSet<>();
    /**
     * Test hook (system property {@code tokenmeter.sink.haltAfterDbCommits}): halt the JVM right after
     * the n-th batch's database commit, before its Kafka offset commit — the crash window the stored
     * positions must cover. Unset in production.
     */
    private static final long HALT_AFTER_DB_COMMITS = Long.getLong("tokenmeter.sink.haltAfterDbCommits", 0);
    private long dbCommits;
    private volatile boolean running = true;

    SinkLoop(String name, BillingSinkConfig config, List<String> topics, BatchWriter writer, OffsetStore offsets,
             DSLContext db, SinkMetrics metrics) {
        this.name = name;
        this.topics = topics;
        this.writer = writer;
        this.offsets = offsets;
        this.db = db;
        this.metrics = metrics;
        this.backoffMax = config.retryBackoffMax();
        // bootstrap servers and the sink's principal
        Map<String, Object> props = new HashMap<>(config.kafka().clientProperties());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, config.groupId() + "-" + name);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, config.groupId() + "-" + name);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, config.batchMaxRecords());
        props.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 300_000);
        // Static membership: a restarted instance takes its partitions back at once instead of waiting
        // for the group to notice the old member is gone.
        props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, config.instanceId() + "-" + name);
        props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30_000);
        this.consumer = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        // Consumer metrics, records-lag-max and per-partition records-lag included.
        new KafkaClientMetrics(consumer).bindTo(metrics.registry);
    }

    String groupSuffix() {
        return name;
    }

    @Override
    public void run() {
        consumer.subscribe(topics, new Positions());
        try {
            while (running) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(500));
                positionPending();
                if (records.isEmpty()) {
                    continue;
                }
                List<ConsumerRecord<byte[], byte[]>> batch = new ArrayList<>(records.count());
                Map<TopicPartition, Long> next = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    batch.add(r);
                    next.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1);
                }
                if (writeWithRetry(batch, next)) {
                    if (HALT_AFTER_DB_COMMITS > 0 && ++dbCommits >= HALT_AFTER_DB_COMMITS) {
                        log.warn("{}: test hook: halting after database commit {}, before the Kafka commit", name, dbCommits);
                        Runtime.getRuntime().halt(137);
                    }
                    Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
                    next.forEach((tp, offset) -> commit.put(tp, new OffsetAndMetadata(offset)));
                    consumer.commitAsync(commit, null);
                }
            }
        } catch (WakeupException e) {
            if (running) {
                throw e;
            }
        } finally {
            consumer.close(Duration.ofSeconds(10));
        }
    }

    /** Retries the batch until it is written or the loop is closed; true when written. */
    private boolean writeWithRetry(List<ConsumerRecord<byte[], byte[]>> batch, Map<TopicPartition, Long> next) {
        int attempt = 0;
        while (running) {
            try {
                writer.write(batch, next);
                if (attempt > 0) {
                    log.info("{}: database writable again after {} retries; resuming", name, attempt);
                    consumer.resume(consumer.paused());
                    unpositioned.forEach(tp -> consumer.pause(List.of(tp)));
                }
                return true;
            } catch (RuntimeException e) {
                attempt++;
                metrics.retries.increment();
                long backoffMs = Math.min(backoffMax.toMillis(), 100L << Math.min(attempt, 10));
                log.warn("{}: writing a batch of {} records failed (attempt {}), retrying in {} ms: {}", name, batch.size(),
                        attempt, backoffMs, e.getClass().getSimpleName() + ": " + firstLine(e.getMessage()));
                consumer.pause(consumer.assignment());
                stayInGroupFor(backoffMs);
            }
        }
        return false;
    }

    /** Polls (paused: no records) so the group does not evict us while we wait. */
    private void stayInGroupFor(long millis) {
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        while (running && System.nanoTime() < until) {
            consumer.pause(consumer.assignment());
            ConsumerRecords<byte[], byte[]> unexpected = consumer.poll(Duration.ofMillis(Math.min(200, millis)));
            // Paused partitions return nothing; a partition assigned during this poll could. Re-read those later.
            Map<TopicPartition, Long> rewind = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> r : unexpected) {
                rewind.merge(new TopicPartition(r.topic(), r.partition()), r.offset(), Math::min);
            }
            rewind.forEach(consumer::seek);
        }
    }

    /** Seeks partitions whose stored position could not be read at assignment (database down then). */
    private void positionPending() {
        if (unpositioned.isEmpty()) {
            return;
        }
        try {
            seekToStored(new ArrayList<>(unpositioned));
            consumer.resume(new ArrayList<>(unpositioned));
            unpositioned.clear();
        } catch (RuntimeException e) {
            log.warn("{}: positions still unreadable ({}); partitions stay paused", name, e.getClass().getSimpleName());
        }
    }

    private void seekToStored(Collection<TopicPartition> partitions) {
        Map<TopicPartition, Long> stored = offsets.positions(db, partitions);
        List<TopicPartition> fresh = new ArrayList<>();
        for (TopicPartition tp : partitions) {
            Long position = stored.get(tp);
            if (position == null) {
                fresh.add(tp);
            } else {
                consumer.seek(tp, position);
            }
        }
        if (!fresh.isEmpty()) {
            consumer.seekToBeginning(fresh);
        }
        log.info("{}: assigned {}; stored positions {}, from the beginning {}", name, partitions, stored, fresh);
    }

    private final class Positions implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            try {
                seekToStored(partitions);
            } catch (RuntimeException e) {
                log.warn("{}: cannot read stored positions ({}); pausing {} until the database answers", name,
                        e.getClass().getSimpleName(), partitions);
                consumer.pause(partitions);
                unpositioned.addAll(partitions);
            }
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            // Every written batch is committed with its positions; nothing to flush.
            unpositioned.removeAll(partitions);
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    @Override
    public void close() {
        running = false;
        consumer.wakeup();
    }

}
