package dev.tokenmeter.sink;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.PostgresEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Postgres goes away under load and comes back: the sink pauses, retries, resumes; nothing lost, no crash. */
@ExtendWith(EnginesExtension.class)
class PostgresOutageIT {

    @Test
    void postgresStoppedUnderLoadLosesNothing(KafkaEngine kafka, PostgresEngine postgres) {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 3)) {
            List<UsageEvent> events = new ArrayList<>();
            for (int i = 0; i < 20_000; i++) {
                events.add(SinkFixture.event("u" + (i % 53), "gpt-4o", i % 3 == 0 ? KeySource.PERSONAL_KEY : KeySource.SERVICE_CREDIT,
                        Instant.parse("2026-11-03T00:00:00Z").plusMillis(i * 131L), 30, 70, 2_500 + i % 100));
            }
            sink.startApp(Map.of("BATCH_MAX_RECORDS", "500", "RETRY_BACKOFF_MAX", "500ms"));
            sink.sendEvents(events.subList(0, 5_000));
            await("the sink is writing").atMost(Duration.ofSeconds(60)).until(() -> sink.ledgerRows() > 0);
            try {
                postgres.stop();
                sink.sendEvents(events.subList(5_000, 15_000));
                await("the sink retried several times while Postgres was down").atMost(Duration.ofSeconds(60))
                        .until(() -> sink.counter("sink_write_retries") >= 3);
            } finally {
                postgres.start();
            }
            sink.sendEvents(events.subList(15_000, 20_000));
            await("all 20,000 events billed after Postgres came back").atMost(Duration.ofSeconds(90))
                    .until(() -> sink.storedNextOffsets() == 20_000);
            assertThat(sink.ledgerRows()).isEqualTo(20_000);
            assertThat(sink.longValue("SELECT sum(cost_nano_usd)::bigint FROM usage_ledger"))
                    .isEqualTo(events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum());
            assertThat(sink.longValue("SELECT count(*) FROM sink_dead_letter")).isZero();
        }
    }
}
