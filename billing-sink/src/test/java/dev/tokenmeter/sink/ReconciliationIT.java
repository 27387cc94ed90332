package dev.tokenmeter.sink;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
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
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * 100,000 events around three month edges (four months), their hourly and monthly totals computed
 * independently in the test and published with stale revisions re-sent afterwards: the reconciliation
 * view shows zero difference for every user and month.
 */
@ExtendWith(EnginesExtension.class)
class ReconciliationIT {

    private static final int EVENTS = 100_000;

    @Test
    void reconciliationShowsZeroDifferenceAfter100000Events(KafkaEngine kafka, PostgresEngine postgres) {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 3)) {
            Random random = new Random(6);
            // Three four-hour windows, each across a month edge: four months, twelve hours.
            Instant[] windows = {Instant.parse("2026-08-31T22:00:00Z"), Instant.parse("2026-09-30T22:00:00Z"),
                    Instant.parse("2026-10-31T22:00:00Z")};
            long spanMs = Duration.ofHours(4).toMillis();
            String[] models = {"gpt-4o", "gpt-4o-mini", "o3-mini"};
            KeySource[] sources = {KeySource.SERVICE_CREDIT, KeySource.PERSONAL_KEY};
            List<UsageEvent> events = new ArrayList<>(EVENTS);
            for (int i = 0; i < EVENTS; i++) {
                events.add(SinkFixture.event("user-" + random.nextInt(40), models[random.nextInt(3)], sources[random.nextInt(2)],
                        windows[random.nextInt(3)].plusMillis((long) (random.nextDouble() * spanMs)), random.nextInt(5000), random.nextInt(2000),
                        random.nextLong(50_000_000)));
            }
            Map<String, UsageTotal> totals = SinkFixture.totalsOf(events);
            List<UsageTotal> stale = totals.values().stream().filter(t -> t.getRevision() > 1)
                    .map(t -> UsageTotal.newBuilder(t).setRevision(t.getRevision() - 1).setEventCount(t.getEventCount() - 1)
                            .setCostNanoUsd(0).build())
                    .toList();

            sink.startApp(Map.of("BATCH_MAX_RECORDS", "5000"));
            sink.sendEvents(events);
            sink.sendTotalsOf(totals.values());
            sink.sendTotalsOf(stale);
            await("ledger has 100,000 rows and every total is read").atMost(Duration.ofSeconds(240))
                    .until(() -> sink.storedNextOffsets() == EVENTS && totalsRead(sink) == totals.size() + stale.size()
                            && sink.ledgerRows() == EVENTS);

            var rows = sink.db.fetch("SELECT * FROM reconciliation ORDER BY user_id, billing_month");
            assertThat(rows).hasSize(40 * 4);
            for (var r : rows) {
                for (String diff : List.of("monthly_minus_ledger_events", "hourly_minus_ledger_events", "monthly_minus_ledger_tokens",
                        "hourly_minus_ledger_tokens", "monthly_minus_ledger_cost_nano_usd", "hourly_minus_ledger_cost_nano_usd")) {
                    assertThat(r.get(diff, Long.class)).as(diff + " of " + r.get("user_id") + " " + r.get("billing_month")).isZero();
                }
            }
            assertThat(sink.longValue("SELECT sum(ledger_events)::bigint FROM reconciliation")).isEqualTo((long) EVENTS);
            assertThat(sink.longValue("SELECT sum(ledger_cost_nano_usd)::bigint FROM reconciliation"))
                    .isEqualTo(events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum());
        }
    }

    private static long totalsRead(SinkFixture sink) {
        return sink.longValue("SELECT coalesce(sum(next_offset), 0)::bigint FROM sink_offset WHERE topic <> ?",
                sink.topics.usageEvents().name());
    }
}
