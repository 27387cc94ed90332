package dev.tokenmeter.edge.publish;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.TopicSpec;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/** Issue 4, "Publishing without loss": the spooling sink on the real broker, including a broker outage. */
@ExtendWith(EnginesExtension.class)
class SpoolingEventSinkIT {

    /** Nothing listens on port 1: every send fails, as when Kafka is unreachable. */
    private static final String DEAD_KAFKA = "127.0.0.1:1";

    @TempDir
    Path spoolDir;

    private static TopicSpec<String, UsageEvent> topic(KafkaEngine kafka) {
        TopicSpec<String, UsageEvent> t = Topics.withPrefix(Names.unique("spool") + ".", 3).usageEvents();
        kafka.createTopic(t.name(), 3);
        return t;
    }

    private static SpoolingEventSink sink(Map<String, Object> kafka, TopicSpec<String, UsageEvent> topic, Path dir, long maxBytes) {
        return sink(kafka, topic, dir, maxBytes, 1 << 20);
    }

    private static SpoolingEventSink sink(Map<String, Object> kafka, TopicSpec<String, UsageEvent> topic, Path dir, long maxBytes,
                                          int maxRequestBytes) {
        UsageEventPublisher publisher = UsageEventPublisher.builder()
                .connection(kafka)
                .topic(topic)
                .deliveryTimeout(Duration.ofMinutes(2))
                .producerProperty("request.timeout.ms", 5_000)
                .producerProperty("max.block.ms", 500)
                .producerProperty("reconnect.backoff.max.ms", 200)
                .producerProperty("max.request.size", maxRequestBytes)
                .build();
        return SpoolingEventSink.builder().publisher(publisher).spoolDir(dir).maxBytes(maxBytes)
                .fsyncInterval(Duration.ofMillis(2)).sendTimeout(Duration.ofMillis(500))
                .closeTimeout(Duration.ofSeconds(5)).build();
    }

    static UsageEvent event(String userId, int n) {
        return UsageEvent.newBuilder()
                .setEventId(UUID.randomUUID().toString())
                .setOccurredAt(Instant.now())
                .setReceivedAt(Instant.now())
                .setTenantId("t-" + userId)
                .setUserId(userId)
                .setKeySource(KeySource.SERVICE_CREDIT)
                .setModel("gpt-4o-mini")
                .setEndpoint("/v1/chat/completions")
                .setOutcome(Outcome.SUCCEEDED)
                .setHttpStatus(200)
                .setPromptTokens(n)
                .setCostNanoUsd(150L * n)
                .build();
    }

    /** Reads every record of the topic from the beginning, for as long as the caller keeps asking. */
    static final class TopicReader implements AutoCloseable {
        private final KafkaConsumer<String, UsageEvent> consumer;
        final List<UsageEvent> events = new ArrayList<>();

        TopicReader(Map<String, Object> kafka, TopicSpec<String, UsageEvent> topic) {
            Properties props = new Properties();
            props.putAll(kafka);
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            consumer = new KafkaConsumer<>(props, new StringDeserializer(), EventSerdes.usageEvent().deserializer());
            List<TopicPartition> parts = new ArrayList<>();
            for (int p = 0; p < topic.partitions(); p++) {
                parts.add(new TopicPartition(topic.name(), p));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
        }

        List<UsageEvent> poll() {
            for (ConsumerRecord<String, UsageEvent> r : consumer.poll(Duration.ofMillis(200))) {
                assertThat(r.key()).as("record key is the user id").isEqualTo(r.value().getUserId());
                assertThat(r.timestamp()).as("record timestamp is occurredAt").isEqualTo(r.value().getOccurredAt().toEpochMilli());
                events.add(r.value());
            }
            return events;
        }

        LinkedHashSet<String> distinctIds() {
            LinkedHashSet<String> ids = new LinkedHashSet<>();
            poll().forEach(e -> ids.add(e.getEventId()));
            return ids;
        }

        /** Per user, event ids in order of their first appearance on the topic (later duplicates ignored). */
        Map<String, List<String>> firstSeenOrderByUser() {
            Map<String, LinkedHashSet<String>> byUser = new LinkedHashMap<>();
            for (UsageEvent e : events) {
                byUser.computeIfAbsent(e.getUserId(), u -> new LinkedHashSet<>()).add(e.getEventId());
            }
            Map<String, List<String>> out = new LinkedHashMap<>();
            byUser.forEach((u, ids) -> out.put(u, List.copyOf(ids)));
            return out;
        }

        @Override
        public void close() {
            consumer.close();
        }
    }

    private static long segmentFiles(Path dir) throws Exception {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".seg")).count();
        }
    }

    @Test
    void brokerOutage_eventsAreSpooledAndReplayedInOrderPerUser_noneLost(KafkaEngine kafka) throws Exception {
        TopicSpec<String, UsageEvent> topic = topic(kafka);
        Map<String, List<String>> submittedByUser = new LinkedHashMap<>();
        int total = 0;
        try (SpoolingEventSink sink = sink(kafka.clientProperties(), topic, spoolDir, 64L << 20);
             TopicReader reader = new TopicReader(kafka.clientProperties(), topic)) {
            // The meters the alert "spool in use" reads (issue 21): 0 before and after the outage, 1 and bytes during it.
            io.micrometer.core.instrument.simple.SimpleMeterRegistry registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
            new dev.tokenmeter.edge.proxy.EdgeMetrics(registry, sink);
            assertThat(registry.get("edge_spool_in_use").gauge().value()).as("spool in use before the outage").isZero();
            // Warm up: the producer has the new topic's metadata before the measured sequence starts.
            UsageEvent warmUp = event("u-warm-up", 0);
            sink.submit(warmUp);
            await("warm-up event on the topic").atMost(Duration.ofSeconds(30))
                    .until(() -> reader.distinctIds().contains(warmUp.getEventId()));
            submittedByUser.put("u-warm-up", new ArrayList<>(List.of(warmUp.getEventId())));
            total++;
            for (int i = 0; i < 60; i++) {
                UsageEvent e = event("u" + (i % 4), i);
                sink.submit(e);
                submittedByUser.computeIfAbsent(e.getUserId(), u -> new ArrayList<>()).add(e.getEventId());
                total++;
            }
            int beforeOutage = total;
            await("events before the outage on the topic").atMost(Duration.ofSeconds(30))
                    .until(() -> reader.distinctIds().size() == beforeOutage);
            kafka.stop();
            try {
                for (int i = 0; i < 300; i++) {
                    UsageEvent e = event("u" + (i % 4), i);
                    sink.submit(e);
                    submittedByUser.computeIfAbsent(e.getUserId(), u -> new ArrayList<>()).add(e.getEventId());
                    total++;
                    if (i == 10) {
                        await("sink switches to the spool").atMost(Duration.ofSeconds(10)).until(sink::spooling);
                    }
                }
                assertThat(sink.spooling()).isTrue();
                assertThat(segmentFiles(spoolDir)).as("events are on disk during the outage").isPositive();
                assertThat(sink.pendingEvents()).isGreaterThanOrEqualTo(300 - 11);
                assertThat(registry.get("edge_spool_in_use").gauge().value()).as("spool in use during the outage").isEqualTo(1.0);
                assertThat(registry.get("edge_spool_bytes").gauge().value()).as("spool bytes during the outage")
                        .isEqualTo((double) sink.spoolBytes()).isGreaterThan(0.0);
            } finally {
                kafka.start();
            }
            int all = total;
            await("every event arrives after the broker is back").atMost(Duration.ofSeconds(90))
                    .until(() -> reader.distinctIds().size() == all);
            assertThat(reader.distinctIds()).containsExactlyInAnyOrderElementsOf(
                    submittedByUser.values().stream().flatMap(List::stream).toList());
            assertThat(reader.firstSeenOrderByUser()).as("per user, first appearances keep submit order")
                    .isEqualTo(submittedByUser);
            await("spool drained and deleted").atMost(Duration.ofSeconds(30))
                    .until(() -> !sink.spooling() && segmentFiles(spoolDir) == 0);
            assertThat(sink.pendingEvents()).isZero();
            assertThat(registry.get("edge_spool_in_use").gauge().value()).as("spool in use after the replay").isZero();
            assertThat(registry.get("edge_spool_bytes").gauge().value()).as("spool bytes after the replay").isZero();
        }
    }

    @Test
    void fullSpool_refusesNewEventsWithSpoolFullException_andIsNotReady(KafkaEngine kafka) throws Exception {
        TopicSpec<String, UsageEvent> topic = topic(kafka);
        try (SpoolingEventSink sink = sink(Map.of("bootstrap.servers", DEAD_KAFKA), topic, spoolDir, 8 * 1024)) {
            sink.submit(event("u-full", 0));
            await("sink spools while Kafka is unreachable").atMost(Duration.ofSeconds(10)).until(sink::spooling);
            int accepted = 0;
            EventSink.SpoolFullException refused = null;
            for (int i = 0; i < 1_000 && refused == null; i++) {
                try {
                    sink.submit(event("u-full", i));
                    accepted++;
                } catch (EventSink.SpoolFullException e) {
                    refused = e;
                }
            }
            assertThat(refused).as("a full spool refuses").isNotNull();
            assertThat(refused.getMessage()).contains("full").contains("SPOOL_MAX_BYTES");
            assertThat(accepted).isBetween(10, 200);
            assertThat(sink.isReady()).as("a full spool makes the edge not ready").isFalse();
            assertThat(sink.spoolBytes()).isLessThanOrEqualTo(8 * 1024);
            assertThatThrownBy(() -> sink.submit(event("u-full", 1))).isInstanceOf(EventSink.SpoolFullException.class);
        }
    }

    @Test
    void tornLastRecord_isCutOnRestart_andTheRestIsReplayed(KafkaEngine kafka) throws Exception {
        TopicSpec<String, UsageEvent> topic = topic(kafka);
        List<String> ids = new ArrayList<>();
        try (SpoolingEventSink down = sink(Map.of("bootstrap.servers", DEAD_KAFKA), topic, spoolDir, 64L << 20)) {
            UsageEvent first = event("u-torn", 0);
            down.submit(first);
            ids.add(first.getEventId());
            await("sink spools while Kafka is unreachable").atMost(Duration.ofSeconds(10)).until(down::spooling);
            for (int i = 1; i < 10; i++) {
                UsageEvent e = event("u-torn", i);
                down.submit(e);
                ids.add(e.getEventId());
            }
        }
        Path segment;
        try (Stream<Path> files = Files.list(spoolDir)) {
            segment = files.filter(p -> p.getFileName().toString().endsWith(".seg")).sorted().reduce((a, b) -> b).orElseThrow();
        }
        // A crash in the middle of the last write: its tail never reached the disk.
        try (FileChannel ch = FileChannel.open(segment, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 7);
        }
        try (SpoolingEventSink up = sink(kafka.clientProperties(), topic, spoolDir, 64L << 20);
             TopicReader reader = new TopicReader(kafka.clientProperties(), topic)) {
            await("the nine whole events are replayed").atMost(Duration.ofSeconds(30))
                    .until(() -> reader.distinctIds().size() >= 9);
            await("spool drained").atMost(Duration.ofSeconds(10)).until(() -> segmentFiles(spoolDir) == 0);
            assertThat(reader.distinctIds()).containsExactlyElementsOf(ids.subList(0, 9));
            assertThat(up.pendingEvents()).isZero();
        }
    }

    /**
     * Issue 14, finding 1: a record Kafka refuses for good at the head of the spool used to be retried forever, with
     * every later event queued behind it (and replayed first again after a restart). Now it is set aside to
     * SPOOL_DIR/rejected/ with its reason, counted in edge_spool_set_aside_events_total, and replay goes on.
     */
    @Test
    void recordsKafkaRefusesForGood_areSetAsideWithTheirReason_andReplayGoesOn_alsoAfterARestart(KafkaEngine kafka) throws Exception {
        TopicSpec<String, UsageEvent> topic = topic(kafka);
        List<String> ids = new ArrayList<>();
        // Within the contract but larger than this producer's max.request.size: the real client refuses it.
        Map<String, String> labels = new LinkedHashMap<>();
        for (int i = 0; i < 16; i++) {
            labels.put("label" + i, "v".repeat(250));
        }
        UsageEvent tooLarge = UsageEvent.newBuilder(event("u-poison", 0)).setAttributes(labels).build();
        // Spooled by an edge without the bounds (ADR 0053): the publisher's validator refuses it.
        UsageEvent outOfBounds = UsageEvent.newBuilder(event("u-poison", 1)).setModel("m".repeat(1_500_000)).build();
        Spool written = Spool.open(spoolDir, 64L << 20, Duration.ofMillis(2));
        written.append(EventSerdes.usageEvent().encode(tooLarge), false);
        for (int i = 0; i < 12; i++) {
            if (i == 4) {
                written.append(EventSerdes.usageEvent().encode(outOfBounds), false);
            }
            if (i == 8) {
                written.append("not an avro record".getBytes(java.nio.charset.StandardCharsets.UTF_8), false);
            }
            UsageEvent e = event("u-good-" + (i % 3), i);
            written.append(EventSerdes.usageEvent().encode(e), false);
            ids.add(e.getEventId());
        }
        written.close();

        io.micrometer.core.instrument.simple.SimpleMeterRegistry registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        try (SpoolingEventSink up = sink(kafka.clientProperties(), topic, spoolDir, 64L << 20, 2_048);
             TopicReader reader = new TopicReader(kafka.clientProperties(), topic)) {
            new dev.tokenmeter.edge.proxy.EdgeMetrics(registry, up);
            await("the 12 good events are replayed past the three poison records").atMost(Duration.ofSeconds(30))
                    .until(() -> reader.distinctIds().size() >= 12);
            // Three partitions: order holds per user (per partition), not across them.
            assertThat(reader.distinctIds()).containsExactlyInAnyOrderElementsOf(ids);
            await("spool drained").atMost(Duration.ofSeconds(10)).until(() -> segmentFiles(spoolDir) == 0);
            assertThat(up.setAsideEvents()).isEqualTo(3);
            assertThat(registry.get("edge_spool_set_aside_events").functionCounter().count()).isEqualTo(3.0);
        }
        Path rejected = spoolDir.resolve(Spool.REJECTED_DIR);
        List<String> reasons = new ArrayList<>();
        try (Stream<Path> files = Files.list(rejected)) {
            for (Path f : files.sorted().toList()) {
                if (f.toString().endsWith(".reason")) {
                    reasons.add(Files.readString(f));
                }
            }
        }
        assertThat(reasons).hasSize(3);
        assertThat(reasons.get(0)).contains("RecordTooLargeException");
        assertThat(reasons.get(1)).contains("InvalidUsageEventException", "model must be 1-128").hasSizeLessThan(500);
        assertThat(reasons.get(2)).startsWith("undecodable");
        try (Stream<Path> files = Files.list(rejected)) {
            assertThat(files.filter(f -> f.toString().endsWith(".event")).count()).isEqualTo(3);
        }

        // A restart replays nothing: the poison records are not in front of anything any more.
        try (SpoolingEventSink again = sink(kafka.clientProperties(), topic, spoolDir, 64L << 20)) {
            assertThat(again.pendingEvents()).isZero();
            assertThat(again.spooling()).isFalse();
            UsageEvent after = event("u-good-0", 99);
            again.submit(after);
            ids.add(after.getEventId());
        }
        try (TopicReader reader = new TopicReader(kafka.clientProperties(), topic)) {
            await("the event after the restart arrives, nothing replayed twice").atMost(Duration.ofSeconds(30))
                    .until(() -> reader.distinctIds().size() >= 13);
            assertThat(reader.distinctIds()).containsExactlyInAnyOrderElementsOf(ids);
        }
    }

    /** Issue 19: an async job is acknowledged only once its event is safe (awaitRecorded), so a SIGKILL cannot lose it. */
    @Test
    void awaitRecorded_returnsOnceEveryEventSubmittedBeforeIsAcknowledgedOrSpooled(KafkaEngine kafka) throws Exception {
        TopicSpec<String, UsageEvent> topic = topic(kafka);
        List<String> ids = new ArrayList<>();
        try (SpoolingEventSink sink = sink(kafka.clientProperties(), topic, spoolDir.resolve("up"), 64L << 20);
             TopicReader reader = new TopicReader(kafka.clientProperties(), topic)) {
            for (int i = 0; i < 500; i++) {
                UsageEvent e = event("u-recorded-" + (i % 5), i);
                sink.submit(e);
                ids.add(e.getEventId());
            }
            assertThat(sink.awaitRecorded(Duration.ofSeconds(30))).as("recorded within the timeout").isTrue();
            assertThat(sink.pendingEvents()).as("every event acknowledged by Kafka when it returns").isZero();
            assertThat(sink.spooling()).isFalse();
            await("the 500 events on the topic").atMost(Duration.ofSeconds(30)).until(() -> reader.distinctIds().size() == 500);
            assertThat(reader.distinctIds()).containsExactlyInAnyOrderElementsOf(ids);
        }
        try (SpoolingEventSink down = sink(Map.of("bootstrap.servers", DEAD_KAFKA), topic, spoolDir.resolve("down"), 64L << 20)) {
            for (int i = 0; i < 50; i++) {
                down.submit(event("u-recorded-down", i));
            }
            assertThat(down.awaitRecorded(Duration.ofSeconds(30))).as("recorded (spooled) within the timeout").isTrue();
            assertThat(down.spooling()).as("Kafka unreachable: the events were moved to the spool").isTrue();
            assertThat(down.pendingEvents()).as("all 50 in the spool").isEqualTo(50);
            assertThat(segmentFiles(spoolDir.resolve("down"))).isPositive();
        }
    }

    @Test
    void close_flushesEveryAcceptedEventToKafka(KafkaEngine kafka) throws Exception {
        TopicSpec<String, UsageEvent> topic = topic(kafka);
        List<String> ids = new ArrayList<>();
        SpoolingEventSink sink = sink(kafka.clientProperties(), topic, spoolDir, 64L << 20);
        long[] submitNanos = new long[2_000];
        for (int i = 0; i < 2_000; i++) {
            UsageEvent e = event("u-close-" + (i % 7), i);
            long start = System.nanoTime();
            sink.submit(e);
            submitNanos[i] = System.nanoTime() - start;
            ids.add(e.getEventId());
        }
        java.util.Arrays.sort(submitNanos);
        System.out.printf("direct submit (Kafka healthy): p50=%.1f us p99=%.1f us%n", submitNanos[1_000] / 1e3, submitNanos[1_980] / 1e3);
        sink.close();
        assertThat(segmentFiles(spoolDir)).as("nothing was left behind in the spool").isZero();
        try (TopicReader reader = new TopicReader(kafka.clientProperties(), topic)) {
            await("all 2,000 events on the topic").atMost(Duration.ofSeconds(30))
                    .until(() -> reader.distinctIds().size() == 2_000);
            assertThat(reader.distinctIds()).containsExactlyInAnyOrderElementsOf(ids);
        }
    }

    @Test
    void close_whileKafkaIsUnreachable_leavesEventsInTheSpoolForTheNextStart(KafkaEngine kafka) throws Exception {
        TopicSpec<String, UsageEvent> topic = topic(kafka);
        List<String> ids = new ArrayList<>();
        SpoolingEventSink down = sink(Map.of("bootstrap.servers", DEAD_KAFKA), topic, spoolDir, 64L << 20);
        for (int i = 0; i < 50; i++) {
            UsageEvent e = event("u-restart", i);
            down.submit(e);
            ids.add(e.getEventId());
        }
        down.close();
        assertThat(segmentFiles(spoolDir)).isPositive();
        try (SpoolingEventSink up = sink(kafka.clientProperties(), topic, spoolDir, 64L << 20);
             TopicReader reader = new TopicReader(kafka.clientProperties(), topic)) {
            await("events spooled before the restart arrive, in order").atMost(Duration.ofSeconds(30))
                    .until(() -> reader.distinctIds().size() == 50);
            assertThat(reader.distinctIds()).containsExactlyElementsOf(ids);
        }
    }
}
