package dev.tokenmeter.sink;

import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.PostgresEngine;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.exception.DataAccessException;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.ds.PGSimpleDataSource;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/** A month closes after its grace into immutable invoice lines; late usage becomes an adjustment in the next open period. */
@ExtendWith(EnginesExtension.class)
class PeriodCloseIT {

    private static final Instant NOW = Instant.parse("2026-11-20T12:00:00Z");

    @Test
    void lateEventAfterTheMonthsCloseIsBookedAsAnAdjustmentInTheNextOpenPeriod(KafkaEngine kafka, PostgresEngine postgres) {
        try (SinkFixture sink = new SinkFixture(kafka, postgres, 1)) {
            List<UsageEvent> september = new ArrayList<>();
            september.add(SinkFixture.event("alice", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-01T00:00:00Z"), 1000, 200, 4_500_000));
            september.add(SinkFixture.event("alice", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-30T23:59:59.999Z"), 10, 20, 123_456_789));
            september.add(SinkFixture.event("alice", "gpt-4o-mini", KeySource.PERSONAL_KEY, Instant.parse("2026-09-15T08:00:00Z"), 50, 50, 1));
            september.add(SinkFixture.event("bob", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-10T08:00:00Z"), 7, 7, 999_999_999_999L));
            // The app's own closer runs at start-up, on the clock given here, not the wall clock (with the wall clock
            // this test broke once December 2026 came: the closer created a January 2027 period). Its clock is the
            // start of September, when nothing is due: at NOW it raced the closer below, and when its first run came
            // after the ledger writes it closed September and October itself (the closer below then found nothing).
            sink.startApp(Map.of(), Clock.fixed(Instant.parse("2026-09-01T00:00:00Z"), ZoneOffset.UTC));
            sink.sendEvents(september);
            sink.sendTotalsOf(SinkFixture.totalsOf(september).values());
            await("September's ledger and totals are written").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.ledgerRows() == 4 && monthlyEvents(sink) == 4);

            PeriodCloser closer = new PeriodCloser(sink.db, Duration.ofDays(3));
            PeriodCloser.Result first = closer.run(NOW);
            assertThat(first.periodsClosed()).as("September and October are past their grace").isEqualTo(2);
            assertThat(first.invoiceLines()).isEqualTo(3);
            assertThat(first.adjustments()).isZero();
            String linesAtClose = invoiceLines(sink);
            assertThat(sink.db.fetch("SELECT billing_month::text, closed_at IS NOT NULL FROM billing_period ORDER BY 1")
                    .map(r -> r.get(0) + "=" + r.get(1)))
                    .containsExactly("2026-09-01=true", "2026-10-01=true", "2026-11-01=false", "2026-12-01=false");
            // The statement's dollars are exact decimals of the nano-USD integers.
            assertThat(sink.decimal("""
                    SELECT sum(cost_usd) FROM monthly_statement WHERE user_id = 'alice' AND billing_month = '2026-09-01'
                    AND key_source = 'SERVICE_CREDIT'""")).isEqualByComparingTo("0.127956789");
            assertThat(sink.decimal("SELECT credit_used_usd FROM monthly_statement WHERE user_id = 'bob'"))
                    .isEqualByComparingTo("999.999999999");
            assertThat(sink.decimal("""
                    SELECT own_key_usd FROM monthly_statement WHERE user_id = 'alice' AND key_source = 'PERSONAL_KEY'"""))
                    .isEqualByComparingTo("0.000000001");

            // A late September event arrives after the close; the aggregator's totals include it.
            UsageEvent late = SinkFixture.event("alice", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-20T10:00:00Z"), 100, 100, 2_000_000);
            List<UsageEvent> withLate = new ArrayList<>(september);
            withLate.add(late);
            sink.sendEvents(List.of(late));
            sink.sendTotalsOf(SinkFixture.totalsOf(withLate).values());
            await("the late event and its totals are written").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.ledgerRows() == 5 && monthlyEvents(sink) == 5);

            PeriodCloser.Result second = closer.run(NOW);
            assertThat(second.periodsClosed()).isZero();
            assertThat(second.adjustments()).isEqualTo(1);
            assertThat(invoiceLines(sink)).as("closed lines unchanged").isEqualTo(linesAtClose);
            assertThat(sink.db.fetch("""
                    SELECT billing_month::text, applies_to_month::text, user_id, model, key_source, requests, total_tokens, cost_usd
                    FROM monthly_statement WHERE line_kind = 'ADJUSTMENT'""").map(r -> r.intoList().toString()))
                    .containsExactly("[2026-11-01, 2026-09-01, alice, gpt-4o, SERVICE_CREDIT, 1, 200, 0.002000000]");
            assertThat(closer.run(NOW)).as("running again books nothing").isEqualTo(new PeriodCloser.Result(0, 0, 0, 0));

            assertThatThrownBy(() -> sink.db.execute("UPDATE invoice_line SET cost_nano_usd = 0"))
                    .isInstanceOf(DataAccessException.class).hasMessageContaining("immutable");
            assertThatThrownBy(() -> sink.db.execute("DELETE FROM invoice_adjustment"))
                    .isInstanceOf(DataAccessException.class).hasMessageContaining("immutable");
            assertThatThrownBy(() -> sink.db.execute("UPDATE billing_period SET closed_at = NULL WHERE billing_month = '2026-09-01'"))
                    .isInstanceOf(DataAccessException.class).hasMessageContaining("closed");
            assertThat(sink.longValue("""
                    SELECT count(*) FROM reconciliation WHERE monthly_minus_ledger_cost_nano_usd <> 0
                    OR hourly_minus_ledger_cost_nano_usd <> 0 OR monthly_minus_ledger_events <> 0""")).isZero();
        }
    }

    /**
     * Issue 14, finding 3: usage back-dated into a closed month whose sums overflow bigint (two ledger
     * events of 5·10^18 nano-USD) cannot be booked. Before, the closer's one transaction failed on every
     * run and nobody's period closed or adjustment was booked; now that user-month is reported and left
     * out, and every other is booked.
     */
    @Test
    void aUserMonthThatCannotBeBookedIsReportedAndEveryOtherUserMonthIsBooked(PostgresEngine postgres) {
        String url = postgres.createMigratedDatabase("close");
        // The writers and the closer run as the sink's own role (issue 13, ADR 0060), as deployed: recording the
        // failure needs its grants on period_close_failure. The owner plants the old oversized ledger rows below.
        DatabaseLogin sinkLogin = postgres.login(ServiceLogins.SINK);
        DSLContext db = database(url, sinkLogin.user(), sinkLogin.password());
        DSLContext owner = database(url, postgres.user(), postgres.password());
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        PeriodCloser closer = new PeriodCloser(db, Duration.ofDays(3), registry);
        List<UsageEvent> september = List.of(
                SinkFixture.event("alice", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-03T10:00:00Z"), 10, 10, 1_000),
                SinkFixture.event("bob", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-04T10:00:00Z"), 10, 10, 2_000));
        write(db, september);
        assertThat(closer.run(NOW)).isEqualTo(new PeriodCloser.Result(2, 2, 0, 0));

        List<UsageEvent> late = List.of(
                SinkFixture.event("mallory", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-10T10:00:00Z"), 1, 1, 1),
                SinkFixture.event("mallory", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-11T10:00:00Z"), 1, 1, 1),
                SinkFixture.event("alice", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-09-20T10:00:00Z"), 100, 100, 2_000_000),
                SinkFixture.event("bob", "gpt-4o", KeySource.SERVICE_CREDIT, Instant.parse("2026-10-02T10:00:00Z"), 5, 5, 3_000));
        write(db, late);
        // Ledger rows written before the event bounds (finding 1) can hold such amounts: 5·10^18 each.
        owner.execute("UPDATE usage_ledger SET cost_nano_usd = 5000000000000000000 WHERE user_id = 'mallory'");

        PeriodCloser.Result second = closer.run(NOW);
        assertThat(second.adjustments()).as("alice's September and bob's October are booked").isEqualTo(2);
        assertThat(second.unbookable()).isEqualTo(1);
        assertThat(db.fetch("SELECT applies_to_month::text, user_id, cost_nano_usd FROM invoice_adjustment ORDER BY user_id")
                .map(r -> r.intoList().toString()))
                .containsExactly("[2026-09-01, alice, 2000000]", "[2026-10-01, bob, 3000]");
        assertThat(db.fetch("SELECT billing_month::text, user_id, failures, reason FROM period_close_failure").map(r -> r.intoList().toString()))
                .singleElement().asString().startsWith("[2026-09-01, mallory, 1, ").contains("22003");
        assertThat(registry.get("sink_period_close_failures").counter().count()).isEqualTo(1);

        // Every run tries again and reports again; nothing else is booked twice.
        assertThat(closer.run(NOW)).isEqualTo(new PeriodCloser.Result(0, 0, 0, 1));
        assertThat(db.fetchValue("SELECT failures FROM period_close_failure WHERE user_id = 'mallory'")).isEqualTo(2L);
        assertThat(db.fetchCount(DSL.table("invoice_adjustment"))).isEqualTo(2);
    }

    private static DSLContext database(String url, String user, String password) {
        PGSimpleDataSource dataSource = new PGSimpleDataSource();
        dataSource.setUrl(url);
        dataSource.setUser(user);
        dataSource.setPassword(password);
        return DSL.using(dataSource, SQLDialect.POSTGRES);
    }

    /** The ledger rows and the monthly and hourly totals of the events, through the sink's own writers. */
    private static void write(DSLContext db, List<UsageEvent> events) {
        OffsetStore offsets = new OffsetStore("close-test");
        List<ConsumerRecord<byte[], byte[]>> ledger = new ArrayList<>();
        for (UsageEvent e : events) {
            ledger.add(new ConsumerRecord<>("usage-events", 0, ledger.size(), null, EventSerdes.usageEvent().encode(e)));
        }
        new LedgerWriter(db, offsets, SinkMetrics.noop()).write(ledger, Map.of(new TopicPartition("usage-events", 0), (long) ledger.size()));
        List<ConsumerRecord<byte[], byte[]>> totals = new ArrayList<>();
        for (UsageTotal t : SinkFixture.totalsOf(events).values()) {
            if (t.getUserId().equals("mallory")) {
                continue; // the aggregator dead-letters the second of mallory's events and the sink never sees a total of both
            }
            totals.add(new ConsumerRecord<>("usage-totals", 0, totals.size(), null, EventSerdes.usageTotal().encode(t)));
        }
        new TotalsWriter(db, offsets, SinkMetrics.noop()).write(totals, Map.of(new TopicPartition("usage-totals", 0), (long) totals.size()));
    }

    private static long monthlyEvents(SinkFixture sink) {
        return sink.longValue("SELECT coalesce(sum(event_count), 0)::bigint FROM usage_total_monthly");
    }

    private static String invoiceLines(SinkFixture sink) {
        return sink.db.fetch("SELECT * FROM invoice_line ORDER BY id").formatCSV();
    }

}
