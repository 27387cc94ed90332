package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.Granularity;
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
import dev.tokenmeter.testkit.kafka.EmbeddedKafkaEngine;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * A send that fails inside a commit interval must not cost a total an event. The aggregator — its own
 * JVM running {@link AggregatorApp#main}, sends waiting at most 3 s (SEND_TIMEOUT) — keeps receiving events while its
 * monthly-totals topic is deleted (every emission to it times out on metadata, the task that sent it is
 * marked corrupted, Kafka Streams closes it dirty and commits the others) and recreated, twice. Its
 * totals then equal an independent sum of the distinct events, exactly: the case the fault suite's
 * KAFKA_OUTAGE hit once at random (docs/adr/0076).
 */
@ExtendWith(EnginesExtension.class)
class AggregatorSendFailureIT {

    private static final int USERS = 24;

    @Test
    void totalsStayExactWhenEmissionsFailMidInterval(KafkaEngine kafka) throws Exception {
        run(kafka, "sendfail", true, (aggregator, sender) -> {
            try (Admin admin = Admin.create(kafka.clientProperties())) {
                for (int round = 0; round < 2; round++) {
                    String monthly = sender.topics.monthlyTotals().name();
                    admin.deleteTopics(List.of(monthly)).all().get();
                    int failuresBefore = failures(aggregator);
                    // Events keep arriving while every emission to the monthly topic times out.
                    await("the aggregator's sends to the deleted topic failed (round " + round + ")")
                            .atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(250))
                            .until(() -> failures(aggregator) > failuresBefore);
                    sender.pace(Duration.ofSeconds(3));
                    admin.createTopics(List.of(new NewTopic(monthly, 3, (short) 1))).all().get();
                    sender.pace(Duration.ofSeconds(3));
                }
            }
        });
    }

    @Test
    void totalsStayExactThroughABrokerOutageLongerThanASendMayBlock() throws Exception {
        try (EmbeddedKafkaEngine kafka = EmbeddedKafkaEngine.launch()) {
            run(kafka, "outage", false, (aggregator, sender) -> {
                // One round: the failure replaces the stream thread, and the new one waits out static membership's
                // session before it gets the tasks back, so a second stop at once would find it idle.
                for (int round = 0; round < 1; round++) {
                    sender.pace(Duration.ofSeconds(2));
                    kafka.stop();
                    int failuresBefore = failures(aggregator);
                    await("the aggregator's sends or commit failed while the broker was away (round " + round + ")")
                            .atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(250))
                            .until(() -> failures(aggregator) > failuresBefore);
                    kafka.start();
                    sender.pace(Duration.ofSeconds(4));
                }
            });
        }
    }

    interface Fault {
        void inject(ChildJvm aggregator, Sender sender) throws Exception;
    }

    /**
     * The aggregator (SEND_TIMEOUT 3 s) and a producer sending events at a steady pace before, during and
     * after {@code fault}; then, with {@code restart}, a restart, which re-emits every open total (a deleted
     * topic lost the emissions before it); then the totals are compared. Without a restart a total whose last
     * emission was lost stays short, as it would downstream.
     */
    private static void run(KafkaEngine kafka, String name, boolean restart, Fault fault) throws Exception {
        String prefix = Names.unique(name) + ".";
        Topics topics = Topics.withPrefix(prefix, 3);
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            topics.createAll(admin, (short) 1);
        }
        Path logs = logDir(prefix);
        Map<String, String> env = kafka.clientEnv(Map.of("TOPIC_PREFIX", prefix, "TOPIC_PARTITIONS", "3",
                "APPLICATION_ID", prefix + "aggregator", "INSTANCE_ID", "agg-1",
                "STATE_DIR", logs.resolve("state").toString(),
                "COMMIT_INTERVAL", "200ms", "EMIT_INTERVAL", "300ms", "SEND_TIMEOUT", "3s",
                "HOUR_GRACE", "2h", "METRICS_PORT", "-1"));
        try (ChildJvm aggregator = new ChildJvm(AggregatorApp.class.getName(), env, logs.resolve("aggregator.log"),
                "-Xmx384m", "-XX:+UseSerialGC");
             Sender sender = new Sender(kafka, topics)) {
            aggregator.start();
            aggregator.awaitPrinted("READY", Duration.ofMinutes(2), List.of());
            sender.start();
            sender.pace(Duration.ofSeconds(3));
            fault.inject(aggregator, sender);
            sender.pace(Duration.ofSeconds(2));
            List<UsageEvent> sent = sender.finish();
            if (restart) {
                aggregator.stop(Duration.ofSeconds(30));
                aggregator.start();
            }

            Map<String, List<Long>> expected = expectedTotals(sent);
            try (KafkaConsumer<String, UsageTotal> totals = consumer(kafka)) {
                totals.subscribe(List.of(topics.hourlyTotals().name(), topics.monthlyTotals().name()));
                Map<String, UsageTotal> latest = new HashMap<>();
                await("totals of " + sent.size() + " events equal the independent sum of the distinct events, per hour and month key")
                        .atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(500))
                        .untilAsserted(() -> {
                            assertThat(aggregator.isAlive()).as(aggregator.logTail(40)).isTrue();
                            for (ConsumerRecord<String, UsageTotal> r : totals.poll(Duration.ofMillis(300))) {
                                latest.merge(r.key(), r.value(), (a, b) -> b.getRevision() >= a.getRevision() ? b : a);
                            }
                            assertThat(summarise(latest)).isEqualTo(expected);
                        });
            }
        }
    }

    /** Sends events (a tenth of them twice) at about 100 a second from its own thread until {@link #finish()}. */
    static final class Sender implements AutoCloseable {
        final Topics topics;
        private final KafkaProducer<String, byte[]> producer;
        private final List<UsageEvent> sent = java.util.Collections.synchronizedList(new ArrayList<>());
        private final Random random = new Random(20261203);
        private volatile boolean running = true;
        private final Thread thread = new Thread(this::loop, "event-sender");

        Sender(KafkaEngine kafka, Topics topics) {
            this.topics = topics;
            this.producer = producer(kafka);
        }

        void start() {
            thread.start();
        }

        /** Lets the sender run for {@code d}: the test's clock of the fault, not a wait for an outcome. */
        void pace(Duration d) throws InterruptedException {
            Thread.sleep(d.toMillis());
        }

        private void loop() {
            while (running) {
                Instant at = Instant.now();
                UsageEvent e = UsageEvent.newBuilder()
                        .setEventId(UUID.randomUUID().toString())
                        .setOccurredAt(at).setReceivedAt(at)
                        .setTenantId("t").setUserId("user-" + random.nextInt(USERS))
                        .setKeySource(random.nextInt(8) == 0 ? KeySource.PERSONAL_KEY : KeySource.SERVICE_CREDIT)
                        .setModel(random.nextBoolean() ? "gpt-4o-mini" : "gpt-4.1")
                        .setEndpoint("/v1/chat/completions")
                        .setOutcome(Outcome.SUCCEEDED).setHttpStatus(200)
                        .setPromptTokens(1 + random.nextInt(4000)).setCompletionTokens(random.nextInt(800))
                        .setCostNanoUsd(1 + random.nextInt(5_000_000))
                        .build();
                sent.add(e);
                int copies = random.nextInt(10) == 0 ? 2 : 1;
                for (int c = 0; c < copies; c++) {
                    producer.send(new ProducerRecord<>(topics.usageEvents().name(), null, at.toEpochMilli(),
                            e.getUserId(), EventSerdes.usageEvent().encode(e)));
                }
                try {
                    Thread.sleep(10);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }

        /** Stops sending, waits until every event is acknowledged, and returns the distinct events sent. */
        List<UsageEvent> finish() throws InterruptedException {
            running = false;
            thread.join(10_000);
            producer.flush();
            return List.copyOf(sent);
        }

        @Override
        public void close() {
            running = false;
            producer.close(Duration.ofSeconds(10));
        }
    }

    /** Under target/, kept after the run: the log says which sends failed and how Streams recovered. */
    private static Path logDir(String prefix) throws java.io.IOException {
        return java.nio.file.Files.createDirectories(Path.of("target", "send-failure-logs", prefix.replace(".", "")));
    }

    /** Tasks Kafka Streams found corrupted and threads it replaced, so far. */
    private static int failures(ChildJvm aggregator) throws java.io.IOException {
        return count(aggregator, "are corrupted and hence need to be re-initialized") + count(aggregator, "Replacing thread");
    }

    private static int count(ChildJvm jvm, String text) throws java.io.IOException {
        String log = java.nio.file.Files.readString(jvm.log(), java.nio.charset.StandardCharsets.ISO_8859_1);
        int n = 0;
        for (int at = log.indexOf(text); at >= 0; at = log.indexOf(text, at + 1)) {
            n++;
        }
        return n;
    }

    /** key → [events, cost, prompt, completion] per hour and per month. */
    private static Map<String, List<Long>> expectedTotals(List<UsageEvent> events) {
        Map<String, long[]> sums = new HashMap<>();
        for (UsageEvent e : events) {
            long hour = Periods.hourStart(e.getOccurredAt());
            long month = Periods.monthStart(Periods.month(e.getOccurredAt()));
            for (String key : Set.of(
                    UsageAggregationProcessor.totalKey(e.getUserId(), e.getModel(), e.getKeySource(), Granularity.HOUR, hour),
                    UsageAggregationProcessor.totalKey(e.getUserId(), e.getModel(), e.getKeySource(), Granularity.MONTH, month))) {
                long[] s = sums.computeIfAbsent(key, k -> new long[4]);
                s[0]++;
                s[1] += e.getCostNanoUsd();
                s[2] += e.getPromptTokens();
                s[3] += e.getCompletionTokens();
            }
        }
        Map<String, List<Long>> out = new HashMap<>();
        sums.forEach((k, s) -> out.put(k, List.of(s[0], s[1], s[2], s[3])));
        return out;
    }

    private static Map<String, List<Long>> summarise(Map<String, UsageTotal> latest) {
        Map<String, List<Long>> out = new HashMap<>();
        latest.forEach((k, t) -> out.put(k, List.of(t.getEventCount(), t.getCostNanoUsd(), t.getPromptTokens(),
                t.getCompletionTokens())));
        return out;
    }

    private static KafkaProducer<String, byte[]> producer(KafkaEngine kafka) {
        return new KafkaProducer<>(kafka.clientProperties(Map.of(ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true, ProducerConfig.LINGER_MS_CONFIG, 5,
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 300_000, ProducerConfig.MAX_BLOCK_MS_CONFIG, 300_000)),
                new StringSerializer(), new ByteArraySerializer());
    }

    private static KafkaConsumer<String, UsageTotal> consumer(KafkaEngine kafka) {
        return new KafkaConsumer<>(kafka.clientProperties(Map.of(ConsumerConfig.GROUP_ID_CONFIG, Names.unique("totals-reader"),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")),
                new StringDeserializer(), EventSerdes.usageTotal().deserializer());
    }
}
