package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.UsageRollup;
import dev.tokenmeter.events.RollupPeriod;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;
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
import java.util.HashSet;
import java.util.Set;
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
 * distinct events, exactly; so do its label rollups (ADR 0078: a value's row or (other) survives the kills).
 */
@ExtendWith(EnginesExtension.class)
class AggregatorExactlyOnceIT {

    private static final int EVENTS = 100_000;
    private static final int DISTINCT = 95_000;
    private static final int ROLLUP_CAP = 4;

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
                "HOUR_GRACE", "30m", "METRICS_PORT", "-1",
                "ROLLUP_DIMENSIONS", "customer", "ROLLUP_MAX_VALUES_PER_USER", Integer.toString(ROLLUP_CAP)));
        try (ChildJvm aggregator = ChildJvm.shippedJar("aggregator-streams", env, dir.resolve("aggregator.log"),
                "-Xmx384m", "-XX:+UseSerialGC");
             KafkaProducer<String, byte[]> producer = producer(kafka);
             KafkaConsumer<String, UsageTotal> totals = TotalsCheck.consumer(kafka);
             KafkaConsumer<String, UsageRollup> rollups = rollupConsumer(kafka)) {
            aggregator.start();
            rollups.subscribe(List.of(topics.rollups().name()));
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

            // The label rollups went through the same kills: per user and month, the values that got a row of their
            // own (at most the cap) hold exactly their events' sums — a value once admitted was never counted as
            // (other) after a restore — and (none) + (other) + the admitted values add up to the user's month.
            Map<String, UsageRollup> latestRollups = new HashMap<>();
            Map<String, Long> expectedRollups = expectedRollups(stream);
            await("monthly customer rollups of the distinct events are exact after two kills")
                    .atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(500))
                    .untilAsserted(() -> {
                        // ~4 rollup records per event: read all there is now, not one poll's worth per look.
                        for (int polls = 0; polls < 400; polls++) {
                            var batch = rollups.poll(Duration.ofMillis(200));
                            if (batch.isEmpty()) {
                                break;
                            }
                            for (ConsumerRecord<String, UsageRollup> r : batch) {
                                latestRollups.merge(r.key(), r.value(), (a, b) -> b.getRevision() >= a.getRevision() ? b : a);
                            }
                        }
                        checkRollups(latestRollups, expectedRollups);
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
                    .setLabels(random.nextInt(10) == 0 ? Map.of() : Map.of("customer", "c" + random.nextInt(9)))
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

    /** "user|month|value" → cost of the distinct events, and "user|month|*" → the user's month. */
    private static Map<String, Long> expectedRollups(List<UsageEvent> stream) {
        Map<String, Long> sums = new HashMap<>();
        Set<String> seen = new HashSet<>();
        for (UsageEvent e : stream) {
            if (!seen.add(e.getEventId())) {
                continue;
            }
            String userMonth = e.getUserId() + "|" + Periods.monthStart(Periods.month(e.getOccurredAt()));
            String value = e.getLabels().getOrDefault("customer", "(none)");
            sums.merge(userMonth + "|" + value, e.getCostNanoUsd(), Long::sum);
            sums.merge(userMonth + "|*", e.getCostNanoUsd(), Long::sum);
        }
        return sums;
    }

    private static void checkRollups(Map<String, UsageRollup> latest, Map<String, Long> expected) {
        Map<String, Long> monthSums = new HashMap<>();
        Map<String, Integer> admitted = new HashMap<>();
        for (UsageRollup r : latest.values()) {
            if (r.getPeriod() != RollupPeriod.MONTH || !r.getDimension().equals("customer")) {
                continue;
            }
            String userMonth = r.getUserId() + "|" + r.getPeriodStart().toEpochMilli();
            monthSums.merge(userMonth, r.getCostNanoUsd(), Long::sum);
            if (r.getValue().equals("(other)")) {
                continue;
            }
            if (!r.getValue().equals("(none)")) {
                admitted.merge(userMonth, 1, Integer::sum);
            }
            assertThat(r.getCostNanoUsd()).as("rollup of " + userMonth + " customer=" + r.getValue())
                    .isEqualTo(expected.getOrDefault(userMonth + "|" + r.getValue(), 0L));
        }
        Map<String, Long> expectedMonths = new HashMap<>();
        expected.forEach((k, v) -> {
            if (k.endsWith("|*")) {
                expectedMonths.put(k.substring(0, k.length() - 2), v);
            }
        });
        assertThat(monthSums).as("per user and month, all customer values add up to the month").isEqualTo(expectedMonths);
        assertThat(admitted.values()).as("values with a row of their own per user and month").allMatch(n -> n <= ROLLUP_CAP);
    }

    private static KafkaConsumer<String, UsageRollup> rollupConsumer(KafkaEngine kafka) {
        return new KafkaConsumer<>(kafka.clientProperties(Map.of(ConsumerConfig.GROUP_ID_CONFIG, Names.unique("rollup-reader"),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed", ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000)),
                new StringDeserializer(), EventSerdes.usageRollup().deserializer());
    }

    private static KafkaProducer<String, byte[]> producer(KafkaEngine kafka) {
        return new KafkaProducer<>(kafka.clientProperties(Map.of(ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.LINGER_MS_CONFIG, 10)), new StringSerializer(), new ByteArraySerializer());
    }
}
