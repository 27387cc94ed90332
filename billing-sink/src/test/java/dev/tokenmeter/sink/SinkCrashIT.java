package dev.tokenmeter.sink;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.PostgresEngine;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The sink process dies right after a database commit, before it commits the offsets to Kafka (the
 * window a commit-after-write sink would re-bill or lose), then a new process starts: exactly one row
 * per event, because positions are read from Postgres, not from Kafka.
 */
@ExtendWith(EnginesExtension.class)
class SinkCrashIT {

    @Test
    void killedBetweenDatabaseCommitAndKafkaCommitThenRestartedLeavesOneRowPerEvent(KafkaEngine kafka, PostgresEngine postgres)
            throws Exception {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 2)) {
            List<UsageEvent> events = new ArrayList<>();
            for (int i = 0; i < 6000; i++) {
                events.add(SinkFixture.event("u" + (i % 31), "gpt-4o-mini", KeySource.SERVICE_CREDIT,
                        Instant.parse("2026-11-02T00:00:00Z").plusMillis(i * 997L), 50, 50, 10_000 + i));
            }
            sink.sendEvents(events);
            Map<String, String> env = sink.env(Map.of("BATCH_MAX_RECORDS", "500"));
            Path log = Path.of("target", "sink-crash-" + sink.topics.usageEvents().name() + ".log");

            ChildJvm crashing = new ChildJvm(BillingSinkApp.class.getName(), env, log, "-Xmx256m",
                    "-Dtokenmeter.sink.haltAfterDbCommits=3").start();
            await("the sink halted itself after its third database commit").atMost(Duration.ofSeconds(90))
                    .until(() -> !crashing.isAlive());
            assertThat(crashing.logContains("halting after database commit 3")).as(crashing.logTail(40)).isTrue();
            long storedAtCrash = sink.storedNextOffsets();
            long rowsAtCrash = sink.ledgerRows();
            assertThat(rowsAtCrash).isPositive().isLessThan(6000).isEqualTo(storedAtCrash);
            // Kafka never heard of the last batch: its committed offsets lag the stored positions.
            assertThat(kafkaCommitted(kafka, "billing-sink-test-ledger", sink.topics.usageEvents().name())).isLessThan(storedAtCrash);

            try (ChildJvm restarted = new ChildJvm(BillingSinkApp.class.getName(), env, log, "-Xmx256m").start()) {
                await("all 6000 events billed after the restart").atMost(Duration.ofSeconds(90))
                        .until(() -> sink.storedNextOffsets() == 6000);
                assertThat(sink.ledgerRows()).isEqualTo(6000);
                assertThat(sink.longValue("SELECT count(DISTINCT event_id) FROM usage_ledger")).isEqualTo(6000L);
                assertThat(sink.longValue("SELECT sum(cost_nano_usd)::bigint FROM usage_ledger"))
                        .isEqualTo(events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum());
                restarted.stop(Duration.ofSeconds(30));
            }
        }
    }

    private static long kafkaCommitted(KafkaEngine kafka, String group, String topic) throws Exception {
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            // The group name is shared by the tests of this JVM; count this test's topic only.
            return offsets.entrySet().stream().filter(e -> e.getKey().topic().equals(topic) && e.getValue() != null)
                    .mapToLong(e -> e.getValue().offset()).sum();
        }
    }
}
