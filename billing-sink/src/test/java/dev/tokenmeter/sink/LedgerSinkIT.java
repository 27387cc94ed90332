package dev.tokenmeter.sink;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.PostgresEngine;
import org.jooq.Record;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** The ledger path through the real app on a real broker and Postgres (issue 6). */
@ExtendWith(EnginesExtension.class)
class LedgerSinkIT {

    private static final Instant OCTOBER = Instant.parse("2026-10-14T10:00:00Z");

    @Test
    void redeliveredBatchesChangeNothing(KafkaEngine kafka, PostgresEngine postgres) {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 3)) {
            List<UsageEvent> events = new ArrayList<>();
            for (int i = 0; i < 3000; i++) {
                events.add(SinkFixture.event("u" + (i % 17), "gpt-4o-mini", KeySource.SERVICE_CREDIT,
                        OCTOBER.plusSeconds(i), 100 + i, 20, 1_000 + i));
            }
            sink.sendEvents(events);
            sink.startApp(Map.of("BATCH_MAX_RECORDS", "500"));
            await("ledger has 3000 rows").atMost(Duration.ofSeconds(60)).until(() -> sink.ledgerRows() == 3000);
            Record before = ledgerFingerprint(sink);

            // The producer retried: every record is on the topic twice.
            sink.sendEvents(events);
            await("the sink has read the 3000 resent records").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.storedNextOffsets() == 6000);
            // And the consumer re-reads everything from offset 0 (positions lost).
            sink.stopApp();
            sink.db.execute("DELETE FROM sink_offset");
            sink.startApp(Map.of("BATCH_MAX_RECORDS", "700"));
            await("the sink has re-read all 6000 records").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.storedNextOffsets() == 6000);

            assertThat(ledgerFingerprint(sink)).isEqualTo(before);
            assertThat(sink.longValue("SELECT count(*) FROM usage_ledger_event_id")).isEqualTo(3000L);
            assertThat(sink.counter("sink_duplicates_skipped")).isGreaterThanOrEqualTo(6000);
        }
    }

    // Regression (issue 6, the bug Lago shipped): the partition key is part of the ledger's primary key,
    // yet a resend with the same id and a timestamp in another month must not be billed twice.
    @Test
    void resendWithSameIdInAnotherMonthIsBilledOnce(KafkaEngine kafka, PostgresEngine postgres) {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 1)) {
            UsageEvent original = SinkFixture.event("u1", "gpt-4o", KeySource.SERVICE_CREDIT,
                    Instant.parse("2026-10-31T23:59:59.900Z"), 10, 5, 777);
            UsageEvent resent = UsageEvent.newBuilder(original).setOccurredAt(Instant.parse("2026-11-01T00:00:00.100Z")).build();
            UsageEvent other = SinkFixture.event("u1", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-11-02T00:00:00Z"), 1, 1, 1);
            sink.sendEvents(List.of(original));
            sink.startApp(Map.of());
            await("the original is in the ledger").atMost(Duration.ofSeconds(60)).until(() -> sink.ledgerRows() == 1);
            sink.sendEvents(List.of(resent, other));
            await("the sink has read the resend and the next event").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.storedNextOffsets() == 3);

            assertThat(sink.db.fetch("SELECT billing_month, cost_nano_usd FROM usage_ledger WHERE event_id = ?::uuid",
                    original.getEventId()).map(r -> r.get(0, LocalDate.class) + "/" + r.get(1, Long.class)))
                    .containsExactly("2026-10-01/777");
            assertThat(sink.ledgerRows()).isEqualTo(2);
            // The same within one batch: both copies in the same poll.
            UsageEvent twin = SinkFixture.event("u2", "gpt-4o", KeySource.PERSONAL_KEY, Instant.parse("2026-09-30T23:00:00Z"), 1, 1, 5);
            sink.sendEvents(List.of(twin, UsageEvent.newBuilder(twin).setOccurredAt(Instant.parse("2026-10-01T01:00:00Z")).build()));
            await("the sink has read the twins").atMost(Duration.ofSeconds(60)).until(() -> sink.storedNextOffsets() == 5);
            assertThat(sink.longValue("SELECT count(*) FROM usage_ledger WHERE event_id = ?::uuid",
                    twin.getEventId())).isEqualTo(1L);
        }
    }

    @Test
    void poisonRecordsGoToTheDeadLetterTableAndProcessingContinues(KafkaEngine kafka, PostgresEngine postgres) {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 1)) {
            List<UsageEvent> good = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                good.add(SinkFixture.event("u" + i, "gpt-4o-mini", KeySource.SERVICE_CREDIT, OCTOBER.plusSeconds(i), 10, 10, 100));
            }
            UsageEvent negative = UsageEvent.newBuilder(good.get(0)).setEventId(UUID.randomUUID().toString())
                    .setPromptTokens(-5).build();
            // Passes the validator but Postgres refuses it: isolated row by row. The validator refuses U+0000 itself
            // since ADR 0053, so this test's own constraint stands for a row only the database refuses.
            sink.db.execute("ALTER TABLE usage_ledger ADD CONSTRAINT test_refused_model CHECK (model <> 'refused-by-the-database')");
            UsageEvent rejectedByDatabase = UsageEvent.newBuilder(good.get(1)).setEventId(UUID.randomUUID().toString())
                    .setModel("refused-by-the-database").build();
            String topic = sink.topics.usageEvents().name();
            sink.sendEvents(good.subList(0, 20));
            sink.sendRaw(topic, "u-x", "not avro at all".getBytes());
            sink.sendRaw(topic, "u-x", EventSerdes.usageEvent().encode(negative));
            sink.sendRaw(topic, "u-x", EventSerdes.usageEvent().encode(rejectedByDatabase));
            sink.sendRaw(topic, "u-x", null);
            sink.sendEvents(good.subList(20, 40));
            sink.startApp(Map.of());

            await("the 40 good events are billed and 4 records dead-lettered").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.ledgerRows() == 40
                            && sink.longValue("SELECT count(*) FROM sink_dead_letter") == 4);
            var letters = sink.db.fetch("SELECT kafka_offset, reason, record_value FROM sink_dead_letter ORDER BY kafka_offset");
            assertThat(letters.map(r -> r.get(0, Long.class))).containsExactly(20L, 21L, 22L, 23L);
            assertThat(letters.get(0).get(1, String.class)).startsWith("undecodable");
            assertThat(letters.get(0).get(2, byte[].class)).isEqualTo("not avro at all".getBytes());
            assertThat(letters.get(1).get(1, String.class)).contains("promptTokens");
            assertThat(letters.get(2).get(1, String.class)).startsWith("refused by the database");
            assertThat(letters.get(3).get(1, String.class)).contains("event is null");
            assertThat(sink.storedNextOffsets()).isEqualTo(44);
            assertThat(sink.counter("sink_dead_letters")).isEqualTo(4);
        }
    }

    private static Record ledgerFingerprint(SinkFixture sink) {
        return sink.db.fetchOne("""
                SELECT count(*), sum(cost_nano_usd), max(ingested_at),
                       md5(string_agg(event_id::text || billing_month || cost_nano_usd, ',' ORDER BY event_id))
                FROM usage_ledger""");
    }
}
