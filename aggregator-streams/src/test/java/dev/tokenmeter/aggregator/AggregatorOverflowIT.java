package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 14, finding 3, on the real broker under exactly_once_v2: the event that used to overflow its user's
 * monthly total (5·10^18 nano-USD, beyond the event bounds now) goes to the dead-letter topic with the error
 * in its headers; the application keeps
 * running and the partition moves on (before, the stream thread died on the record, was replaced, read
 * the same record again, and every user on that partition stopped).
 */
@ExtendWith(EnginesExtension.class)
class AggregatorOverflowIT {

    private static final long HALF_OF_TOO_MUCH = 5_000_000_000_000_000_000L; // 5·10^14 tokens at 10,000 nano-USD each
    private static final long LARGEST = dev.tokenmeter.events.validate.UsageEventBounds.COST_MAX_NANO_USD;

    @Test
    void anOverflowingEventIsDeadLetteredAndThePartitionIsNotStuck(KafkaEngine kafka, @TempDir Path dir) {
        String prefix = Names.unique("overflow") + ".";
        Topics topics = Topics.withPrefix(prefix, 1);
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            topics.createAll(admin, (short) 1);
        }
        AggregatorConfig config = AggregatorConfig.fromEnv(kafka.clientEnv(Map.of("APPLICATION_ID", prefix + "aggregator",
                "STATE_DIR", dir.resolve("state").toString(),
                "COMMIT_INTERVAL", "100ms", "EMIT_INTERVAL", "200ms", "METRICS_PORT", "-1")));
        assertThat(config.processingGuarantee()).isEqualTo("exactly_once_v2");

        UsageEvent first = UsageAggregationTopologyTest.event("olga", "2026-05-04T10:00:00Z", LARGEST);
        UsageEvent overflowing = UsageEvent.newBuilder(UsageAggregationTopologyTest.event("olga", "2026-05-04T10:01:00Z", HALF_OF_TOO_MUCH))
                .setCompletionTokens(500_000_000_000_000L).build();
        UsageEvent after = UsageAggregationTopologyTest.event("olga", "2026-05-04T10:02:00Z", 7);
        UsageEvent otherUser = UsageAggregationTopologyTest.event("piet", "2026-05-04T10:03:00Z", 11);

        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        KafkaStreams streams = AggregatorApp.create(config, topics, new AggregatorMetrics(registry));
        try (KafkaProducer<String, byte[]> producer = producer(kafka);
             KafkaConsumer<String, byte[]> dlq = consumer(kafka, topics.deadLetter().name());
             KafkaConsumer<String, byte[]> totals = consumer(kafka, topics.monthlyTotals().name())) {
            streams.start();
            for (UsageEvent e : List.of(first, overflowing, after, otherUser)) {
                producer.send(new ProducerRecord<>(topics.usageEvents().name(), null, e.getOccurredAt().toEpochMilli(),
                        e.getUserId(), EventSerdes.usageEvent().encode(e)));
            }
            producer.flush();

            List<ConsumerRecord<String, byte[]>> dead = new ArrayList<>();
            Map<String, UsageTotal> latest = new HashMap<>();
            await("olga's and piet's totals count every event but the overflowing one").atMost(Duration.ofSeconds(60))
                    .pollInterval(Duration.ofMillis(100))
                    .until(() -> {
                        assertThat(streams.state()).isIn(KafkaStreams.State.REBALANCING, KafkaStreams.State.RUNNING);
                        dlq.poll(Duration.ofMillis(50)).forEach(dead::add);
                        totals.poll(Duration.ofMillis(50)).forEach(r -> latest.put(r.key(), EventSerdes.usageTotal().decode(r.value())));
                        return costOf(latest, "olga") == LARGEST + 7 && costOf(latest, "piet") == 11 && dead.size() == 1;
                    });
            assertThat(dead.get(0).value()).isEqualTo(EventSerdes.usageEvent().encode(overflowing));
            assertThat(dead.get(0).key()).isEqualTo("olga");
            // Beyond the event bounds since finding 1: refused as invalid before any sum is touched.
            assertThat(header(dead.get(0), DeadLetters.ERROR)).startsWith("invalid").contains("costNanoUsd");
            assertThat(header(dead.get(0), DeadLetters.SOURCE_OFFSET)).isEqualTo("1");
            assertThat(streams.state()).isEqualTo(KafkaStreams.State.RUNNING);
            assertThat(registry.get("aggregator_dead_letters").counter().count()).isEqualTo(1);
        } finally {
            streams.close(Duration.ofSeconds(30));
        }
    }

    private static long costOf(Map<String, UsageTotal> latest, String user) {
        return latest.values().stream().filter(t -> t.getUserId().equals(user))
                .mapToLong(UsageTotal::getCostNanoUsd).max().orElse(-1);
    }

    private static String header(ConsumerRecord<String, byte[]> record, String name) {
        Header h = record.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private static KafkaProducer<String, byte[]> producer(KafkaEngine kafka) {
        return new KafkaProducer<>(kafka.clientProperties(Map.of(ProducerConfig.ACKS_CONFIG, "all")), new StringSerializer(), new ByteArraySerializer());
    }

    private static KafkaConsumer<String, byte[]> consumer(KafkaEngine kafka, String topic) {
        KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(kafka.clientProperties(Map.of(ConsumerConfig.GROUP_ID_CONFIG, Names.unique("overflow-reader"),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")), new StringDeserializer(), new ByteArrayDeserializer());
        consumer.subscribe(List.of(topic));
        return consumer;
    }
}
