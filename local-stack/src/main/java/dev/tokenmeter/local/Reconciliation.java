package dev.tokenmeter.local;

import java.io.PrintStream;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.LocalDate;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The demo's final checks, computed from the base tables independently of the views finance reads:
 * every call has exactly one ledger row, and per (user, model, key source) the ledger, the monthly total
 * and the sum of the hourly totals agree on every count, token and nano-dollar.
 */
final class Reconciliation {

    /** What one demo user is billed this month, as finance reads it: the {@code monthly_statement} view. */
    static final String STATEMENT_SQL = """
            SELECT line_kind, model, key_source, requests, total_tokens, cost_nano_usd, cost_usd,
                   credit_used_usd, own_key_usd
            FROM monthly_statement
            WHERE user_id = ? AND billing_month = ?
            ORDER BY line_kind DESC, key_source, model""";

    /**
     * Cost by service tier and priced model (issue 16, ADR 0068): the ledger keeps the tier each call was billed at and
     * the model the upstream answered with; the same query is in billing-sink's README for finance.
     */
    static final String COST_BY_TIER_SQL = """
            SELECT service_tier, split_part(price_version, '@', 1) AS priced_model,
                   count(*) AS requests, sum(prompt_tokens + completion_tokens) AS tokens,
                   sum(cost_nano_usd) AS cost_nano_usd, (sum(cost_nano_usd) / 1e9)::numeric(30,9) AS cost_usd,
                   count(*) FILTER (WHERE model <> answered_model) AS answered_as_snapshot,
                   count(*) FILTER (WHERE attributes ->> 'unpriced_tier' IS NOT NULL) AS unpriced_tier
            FROM usage_ledger
            WHERE billing_month = ? AND outcome <> 'REJECTED'
            GROUP BY 1, 2
            ORDER BY 1, 2""";

    /** The statement's bottom line. */
    static final String STATEMENT_TOTAL_SQL = """
            SELECT sum(requests) AS requests, sum(cost_usd) AS total_usd, sum(credit_used_usd) AS credit_used_usd,
                   sum(own_key_usd) AS own_key_usd
            FROM monthly_statement
            WHERE user_id = ? AND billing_month = ?""";

    /** The finance {@code reconciliation} view for one month: every difference is zero when all is well. */
    static final String RECONCILIATION_SQL = """
            SELECT user_id, ledger_cost_nano_usd, monthly_cost_nano_usd, hourly_cost_nano_usd,
                   monthly_minus_ledger_events, hourly_minus_ledger_events,
                   monthly_minus_ledger_cost_nano_usd, hourly_minus_ledger_cost_nano_usd
            FROM reconciliation
            WHERE billing_month = ?
            ORDER BY user_id""";

    private static final String MISMATCHES_SQL = """
            WITH l AS (SELECT user_id, model, key_source, count(*) AS n, sum(cost_nano_usd) AS cost,
                              sum(prompt_tokens) AS p, sum(cached_prompt_tokens) AS cp, sum(completion_tokens) AS c,
                              sum(reasoning_tokens) AS r
                       FROM usage_ledger WHERE billing_month = ? GROUP BY 1, 2, 3),
                 m AS (SELECT user_id, model, key_source, event_count AS n, cost_nano_usd AS cost, prompt_tokens AS p,
                              cached_prompt_tokens AS cp, completion_tokens AS c, reasoning_tokens AS r
                       FROM usage_total_monthly WHERE billing_month = ?),
                 h AS (SELECT user_id, model, key_source, sum(event_count) AS n, sum(cost_nano_usd) AS cost,
                              sum(prompt_tokens) AS p, sum(cached_prompt_tokens) AS cp, sum(completion_tokens) AS c,
                              sum(reasoning_tokens) AS r
                       FROM usage_total_hourly WHERE hour_start >= ? AND hour_start < ? GROUP BY 1, 2, 3)
            SELECT coalesce(l.user_id, m.user_id, h.user_id), coalesce(l.model, m.model, h.model),
                   coalesce(l.key_source, m.key_source, h.key_source), l.n, m.n, h.n, l.cost, m.cost, h.cost
            FROM l FULL JOIN m USING (user_id, model, key_source) FULL JOIN h USING (user_id, model, key_source)
            WHERE (l.n, l.cost, l.p, l.cp, l.c, l.r) IS DISTINCT FROM (m.n, m.cost, m.p, m.cp, m.c, m.r)
               OR (l.n, l.cost, l.p, l.cp, l.c, l.r) IS DISTINCT FROM (h.n, h.cost, h.p, h.cp, h.c, h.r)""";

    /** {@code ledgerRows}: rows in the ledger when the verdict was taken (every call sent should have one). */
    record Verdict(boolean ok, List<String> lines, long ledgerRows) {
    }

    private final String jdbcUrl;
    private final String user;
    private final String password;
    private final YearMonth month = YearMonth.now(ZoneOffset.UTC);

    Reconciliation(String jdbcUrl, String user, String password) {
        this.jdbcUrl = jdbcUrl;
        this.user = user;
        this.password = password;
    }

    /**
     * Waits until every event id the edge returned is in the ledger, the ledger has stopped growing, and
     * the totals agree with it.
     */
    boolean awaitDrained(DemoTraffic.Report report, Duration timeout, PrintStream out) throws SQLException {
        long deadline = System.nanoTime() + timeout.toNanos();
        long ledger = -1;
        long previous = -2;
        int mismatches = -1;
        int missing = -1;
        while (System.nanoTime() < deadline) {
            ledger = ledgerRows();
            missing = missing(report).size();
            mismatches = mismatches().size();
            out.print("\rwaiting for the pipeline to drain: ledger " + ledger + " rows, " + missing
                    + " answered calls not yet in the ledger, " + mismatches + " totals not yet equal to the ledger   ");
            out.flush();
            if (missing == 0 && mismatches == 0 && ledger == previous) {
                out.println();
                return true;
            }
            previous = ledger;
            Stack.pause(Duration.ofSeconds(1));
        }
        out.println();
        out.println("pipeline did not drain within " + timeout + " (ledger " + ledger + ", missing " + missing
                + ", mismatching totals " + mismatches + ")");
        return false;
    }

    Verdict verdict(DemoTraffic.Report report) throws SQLException {
        List<String> lines = new ArrayList<>();
        boolean ok = true;
        long ledger = ledgerRows();
        long distinct = scalar("SELECT count(DISTINCT event_id) FROM usage_ledger");
        long guards = scalar("SELECT count(*) FROM usage_ledger_event_id");
        long answered = report.eventIds().size();
        lines.add(String.format("calls sent %d, answered with an event id %d, ledger rows %d, distinct event ids %d,"
                + " dedup guards %d", report.sent(), answered, ledger, distinct, guards));
        if (distinct != ledger || guards != ledger) {
            ok = false;
            lines.add("FAIL: duplicate event ids in the ledger");
        }
        // Every call produces exactly one event; a call whose client gave up (transport error) has no id
        // on our side but is still metered, so the ledger lies between the answered and the sent calls.
        if (ledger < answered || ledger > report.sent()) {
            ok = false;
            lines.add("FAIL: ledger rows must be between the answered calls and the calls sent");
        }
        Set<String> missing = missing(report);
        lines.add("event ids returned to callers missing from the ledger: " + missing.size());
        if (!missing.isEmpty()) {
            ok = false;
        }
        List<String> mismatches = mismatches();
        lines.add("totals differing from the ledger (user/model/key source): " + mismatches.size());
        mismatches.stream().limit(10).forEach(m -> lines.add("  " + m));
        if (!mismatches.isEmpty()) {
            ok = false;
        }
        long viewDiffs = scalar("SELECT count(*) FROM reconciliation WHERE (monthly_minus_ledger_events, hourly_minus_ledger_events,"
                + " monthly_minus_ledger_tokens, hourly_minus_ledger_tokens, monthly_minus_ledger_cost_nano_usd,"
                + " hourly_minus_ledger_cost_nano_usd) <> (0, 0, 0, 0, 0, 0)");
        lines.add("user-months with a non-zero difference in the reconciliation view: " + viewDiffs);
        if (viewDiffs != 0) {
            ok = false;
        }
        lines.add("dead letters in the sink: " + scalar("SELECT count(*) FROM sink_dead_letter"));
        return new Verdict(ok, lines, ledger);
    }

    private Set<String> missing(DemoTraffic.Report report) throws SQLException {
        Set<String> missing = new HashSet<>(report.eventIds());
        missing.removeAll(ledgerIds());
        return missing;
    }

    long ledgerRows() throws SQLException {
        return scalar("SELECT count(*) FROM usage_ledger");
    }

    private Set<String> ledgerIds() throws SQLException {
        Set<String> ids = new HashSet<>();
        try (Connection db = connect(); ResultSet rs = db.createStatement().executeQuery("SELECT event_id::text FROM usage_ledger")) {
            while (rs.next()) {
                ids.add(rs.getString(1));
            }
        }
        return ids;
    }

    private List<String> mismatches() throws SQLException {
        LocalDate first = month.atDay(1);
        List<String> rows = new ArrayList<>();
        try (Connection db = connect(); PreparedStatement s = db.prepareStatement(MISMATCHES_SQL)) {
            s.setObject(1, first);
            s.setObject(2, first);
            s.setObject(3, first.atStartOfDay().atOffset(ZoneOffset.UTC));
            s.setObject(4, first.plusMonths(1).atStartOfDay().atOffset(ZoneOffset.UTC));
            try (ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    rows.add(String.format("%s/%s/%s events ledger=%s monthly=%s hourly=%s cost ledger=%s monthly=%s hourly=%s",
                            rs.getString(1), rs.getString(2), rs.getString(3), rs.getObject(4), rs.getObject(5),
                            rs.getObject(6), rs.getObject(7), rs.getObject(8), rs.getObject(9)));
                }
            }
        }
        return rows;
    }

    private long scalar(String sql) throws SQLException {
        try (Connection db = connect(); ResultSet rs = db.createStatement().executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private Connection connect() throws SQLException {
        return DriverManager.getConnection(jdbcUrl, user, password);
    }
}
