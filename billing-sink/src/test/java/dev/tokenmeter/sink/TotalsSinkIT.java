package dev.tokenmeter.sink;

import dev.tokenmeter.events.Granularity;
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
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Totals upserts: the highest revision wins whatever the order; final is sticky; a correction replaces a final. */
@ExtendWith(EnginesExtension.class)
class TotalsSinkIT {

    @Test
    void olderRevisionNeverOverwritesNewerAndFinalIsSticky(KafkaEngine kafka, PostgresEngine postgres) {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 1)) {
            UsageEvent e = SinkFixture.event("u1", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-10-05T10:15:00Z"), 10, 5, 1000);
            UsageTotal monthly = SinkFixture.totalsOf(List.of(e)).values().stream()
                    .filter(t -> t.getGranularity() == Granularity.MONTH).findFirst().orElseThrow();
            UsageTotal rev5 = copy(monthly, 5, 5_000, false);
            UsageTotal rev3 = copy(monthly, 3, 3_000, false);
            UsageTotal final6 = copy(monthly, 6, 6_000, true);
            UsageTotal running7 = copy(monthly, 7, 7_000, false);  // cannot happen after a final, but must not unset it
            UsageTotal correction9 = copy(monthly, 9, 9_000, true);

            sink.startApp(Map.of());
            sink.sendTotals(sink.topics.monthlyTotals().name(), List.of(rev5));
            sink.sendTotals(sink.topics.monthlyTotals().name(), List.of(rev3));
            await("revision 5 stored, 3 ignored").atMost(Duration.ofSeconds(60))
                    .until(() -> "5/5000/false".equals(stored(sink)) && totalsRead(sink) == 2);

            sink.sendTotals(sink.topics.finalTotals().name(), List.of(final6));
            sink.sendTotals(sink.topics.monthlyTotals().name(), List.of(running7));
            await("revision 7 stored and still final").atMost(Duration.ofSeconds(60))
                    .until(() -> "7/7000/true".equals(stored(sink)));

            sink.sendTotals(sink.topics.finalTotals().name(), List.of(correction9));
            sink.sendTotals(sink.topics.finalTotals().name(), List.of(final6));
            await("the correction replaced the final; the stale final was ignored").atMost(Duration.ofSeconds(60))
                    .until(() -> totalsRead(sink) == 6);
            assertThat(stored(sink)).isEqualTo("9/9000/true");
        }
    }

    /**
     * Issue 14, finding 2, end to end through Kafka: a total whose model Postgres refuses (a nul character)
     * goes to sink_dead_letter with its reason, and the totals sent after it are still written.
     */
    @Test
    void aTotalPostgresRefusesIsSetAsideAndLaterTotalsAreStillWritten(KafkaEngine kafka, PostgresEngine postgres) {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 1)) {
            Instant at = Instant.parse("2026-10-05T10:15:00Z");
            UsageTotal refused = monthly(SinkFixture.event("u1", "gpt\u00004o", KeySource.SERVICE_CREDIT, at, 10, 5, 1000));
            UsageTotal later = monthly(SinkFixture.event("u2", "gpt-4o", KeySource.SERVICE_CREDIT, at, 10, 5, 2000));

            sink.startApp(Map.of());
            sink.sendTotals(sink.topics.monthlyTotals().name(), List.of(refused));
            sink.sendTotals(sink.topics.monthlyTotals().name(), List.of(later));
            await("the later total is written although the one before it cannot be").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.longValue("SELECT count(*) FROM usage_total_monthly WHERE user_id = 'u2'") == 1);
            assertThat(sink.db.fetch("SELECT topic, reason FROM sink_dead_letter").map(r -> r.get(0) + ": " + r.get(1)))
                    .singleElement().asString()
                    .startsWith(sink.topics.monthlyTotals().name() + ": refused by the database");
            assertThat(sink.longValue("SELECT count(*) FROM usage_total_monthly")).isEqualTo(1);
            assertThat(sink.counter("sink_dead_letters")).isEqualTo(1);
        }
    }

    private static UsageTotal monthly(UsageEvent e) {
        return SinkFixture.totalsOf(List.of(e)).values().stream()
                .filter(t -> t.getGranularity() == Granularity.MONTH).findFirst().orElseThrow();
    }

    private static long totalsRead(SinkFixture sink) {
        return sink.longValue("SELECT coalesce(sum(next_offset), 0)::bigint FROM sink_offset WHERE topic <> ?",
                sink.topics.usageEvents().name());
    }

    private static String stored(SinkFixture sink) {
        var r = sink.db.fetchOne("SELECT revision, cost_nano_usd, is_final FROM usage_total_monthly");
        return r == null ? null : r.get(0) + "/" + r.get(1) + "/" + r.get(2);
    }

    private static UsageTotal copy(UsageTotal t, long revision, long cost, boolean isFinal) {
        return UsageTotal.newBuilder(t).setRevision(revision).setCostNanoUsd(cost).setIsFinal(isFinal).build();
    }
}
