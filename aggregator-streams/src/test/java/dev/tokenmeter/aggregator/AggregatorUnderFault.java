package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The aggregator — its own JVM running the shipped jar, sends waiting at most 3 s (SEND_TIMEOUT) — with events
 * flowing before, during and after a fault, then its totals against an independent sum of the distinct events
 * ({@link TotalsCheck}). Used by {@link AggregatorSendFailureIT} and {@link AggregatorBrokerOutageIT}.
 */
final class AggregatorUnderFault {

    private static final int USERS = 24;

    private AggregatorUnderFault() {
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
    static void run(KafkaEngine kafka, String name, boolean restart, Fault fault) throws Exception {
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
        try (ChildJvm aggregator = ChildJvm.shippedJar("aggregator-streams", env, logs.resolve("aggregator.log"),
                "-Xmx384m", "-XX:+UseSerialGC");
             Sender sender = new Sender(kafka, topics)) {
            aggregator.start();
            aggregator.awaitPrinted("READY", Duration.ofMinutes(2), List.of());
            sender.start();
            sender.awaitSent(300);
            fault.inject(aggregator, sender);
            sender.awaitSent(200);
            List<UsageEvent> sent = sender.finish();
            if (restart) {
                aggregator.stop(Duration.ofSeconds(30));
                aggregator.start();
            }

            Map<String, List<Long>> expected = TotalsCheck.expected(sent);
            try (KafkaConsumer<String, UsageTotal> totals = TotalsCheck.consumer(kafka)) {
                totals.subscribe(List.of(topics.hourlyTotals().name(), topics.monthlyTotals().name()));
                Map<String, UsageTotal> latest = new HashMap<>();
                await("totals of " + sent.size() + " events equal the independent sum of the distinct events, per hour and month key")
                        .atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(500))
                        .untilAsserted(() -> {
                            assertThat(aggregator.isAlive()).as(aggregator.logTail(40)).isTrue();
                            TotalsCheck.poll(totals, latest);
                            assertThat(TotalsCheck.summarise(latest)).isEqualTo(expected);
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

        /** Waits until the sender has sent {@code n} more distinct events (it keeps sending meanwhile). */
        void awaitSent(int n) {
            int target = sent.size() + n;
            await("the sender has sent " + n + " more events (" + target + " in all)")
                    .atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(50))
                    .until(() -> sent.size() >= target);
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
    static int failures(ChildJvm aggregator) throws java.io.IOException {
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

    private static KafkaProducer<String, byte[]> producer(KafkaEngine kafka) {
        return new KafkaProducer<>(kafka.clientProperties(Map.of(ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true, ProducerConfig.LINGER_MS_CONFIG, 5,
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 300_000, ProducerConfig.MAX_BLOCK_MS_CONFIG, 300_000)),
                new StringSerializer(), new ByteArraySerializer());
    }

}
