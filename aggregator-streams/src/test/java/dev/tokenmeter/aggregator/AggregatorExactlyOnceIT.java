package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 5's proof on the real broker: 100,000 events (5% duplicates, some out of order) while the
 * aggregator — its own JVM running the shipped jar, configured by environment only — is SIGKILLed twice mid-stream and
 * restarted on the same state directory. The totals it ends with equal an independent sum of the
 * distinct events, exactly.
 */
@ExtendWith(EnginesExtension.class)
class AggregatorExactlyOnceIT {

    private static final int EVENTS = 100_000;
    private static final int DISTINCT = 95_000;

    @Test
    void totalsAreExactAfterTwoHardKills(KafkaEngine kafka, @TempDir Path dir) throws Exception {
        String prefix = Names.unique("eos") + ".";
        Topics topics = Topics.withPrefix(prefix, 3);
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            topics.createAll(admin, (short) 1);
        }
        List<UsageEvent> stream = events();
        Map<String, List<Long>> expected = TotalsCheck.expected(stream);
        assertThat(stream.stream().map(UsageEvent::getEventId).distinct().count()).isEqualTo(DISTINCT);

        Map<String, String> env = kafka.clientEnv(Map.of("TOPIC_PREFIX", prefix, "TOPIC_PARTITIONS", "3",
                "APPLICATION_ID", prefix + "aggregator",
                "STATE_DIR", dir.resolve("state").toString(),
                "COMMIT_INTERVAL", "100ms", "EMIT_INTERVAL", "500ms",
                "HOUR_GRACE", "30m", "METRICS_PORT", "-1"));
        try (ChildJvm aggregator = ChildJvm.shippedJar("aggregator-streams", env, dir.resolve("aggregator.log"),
                "-Xmx384m", "-XX:+UseSerialGC");
             KafkaProducer<String, byte[]> producer = producer(kafka);
             KafkaConsumer<String, UsageTotal> totals = TotalsCheck.consumer(kafka)) {
            aggregator.start();
            totals.subscribe(List.of(topics.hourlyTotals().name(), topics.monthlyTotals().name()));
            Map<String, UsageTotal> latest = new HashMap<>();

            int third = stream.size() / 3;
            for (int round = 0; round < 3; round++) {
                List<UsageEvent> slice = stream.subList(round * third, round == 2 ? stream.size() : (round + 1) * third);
                for (UsageEvent e : slice) {
                    producer.send(new ProducerRecord<>(topics.usageEvents().name(), null, e.getOccurredAt().toEpochMilli(),
                            e.getUserId(), EventSerdes.usageEvent().encode(e)));
                }
                producer.flush();
                if (round < 2) {
                    int before = latest.size();
                    await("aggregator has emitted totals for slice " + round + " before the kill")
                            .atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(100))
                            .until(() -> {
                                assertThat(aggregator.isAlive()).as(aggregator.logTail(30)).isTrue();
                                TotalsCheck.poll(totals, latest);
                                return latest.size() > before;
                            });
                    aggregator.kill();
                    aggregator.start();
                }
            }

            await("final totals equal the independent sum of the 95,000 distinct events")
                    .atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(500))
                    .untilAsserted(() -> {
                        TotalsCheck.poll(totals, latest);
                        assertThat(TotalsCheck.summarise(latest)).isEqualTo(expected);
                    });
        }
    }

    private static List<UsageEvent> events() {
        Random random = new Random(20261122);
        Instant base = Instant.parse("2026-10-31T20:00:00Z"); // crosses the October/November boundary
        List<UsageEvent> distinct = new ArrayList<>(DISTINCT);
        for (int i = 0; i < DISTINCT; i++) {
            Instant at = base.plusMillis(i * 3_000L + random.nextInt(1000)); // about 80 hours of traffic
            distinct.add(UsageEvent.newBuilder()
                    .setEventId(UUID.randomUUID().toString())
                    .setOccurredAt(at).setReceivedAt(at.plusMillis(100))
                    .setTenantId("t").setUserId("user-" + random.nextInt(50))
                    .setKeySource(random.nextInt(10) == 0 ? KeySource.PERSONAL_KEY : KeySource.SERVICE_CREDIT)
                    .setModel(List.of("gpt-4o-mini", "gpt-4.1", "o4-mini").get(random.nextInt(3)))
                    .setEndpoint("/v1/chat/completions")
                    .setOutcome(random.nextInt(50) == 0 ? Outcome.FAILED : Outcome.SUCCEEDED).setHttpStatus(200)
                    .setPromptTokens(random.nextInt(4000)).setCompletionTokens(random.nextInt(800))
                    .setCostNanoUsd(random.nextInt(5_000_000))
                    .build());
        }
        List<UsageEvent> stream = new ArrayList<>(distinct);
        for (int i = 0; i < EVENTS - DISTINCT; i++) {
            stream.add(distinct.get(random.nextInt(DISTINCT)));
        }
        // Keep the rough time order but shuffle within windows of 200 events: out of order, inside grace.
        for (int from = 0; from < stream.size(); from += 200) {
            Collections.shuffle(stream.subList(from, Math.min(stream.size(), from + 200)), random);
        }
        return stream;
    }

    private static KafkaProducer<String, byte[]> producer(KafkaEngine kafka) {
        return new KafkaProducer<>(kafka.clientProperties(Map.of(ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.LINGER_MS_CONFIG, 10)), new StringSerializer(), new ByteArraySerializer());
    }
}
