package dev.tokenmeter.local;

import dev.tokenmeter.testkit.openai.FakeOpenAi;
import java.io.PrintStream;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.Map;

/**
 * The demo's reconciliation with the upstream's own bill (issue 16, ADR 0086): the billing sink's upstream reconciler
 * reads the fake OpenAI's Usage and Costs APIs (its own count of the calls it answered on the edge's key); after the
 * pipeline has drained, this waits for one more reconciler run, prints {@code upstream_reconciliation} for today and
 * passes only if every difference is within the tolerance the sink was given (zero here).
 */
final class UpstreamCheck {

    static final String TODAY_SQL = """
            SELECT model, ours_requests, upstream_requests, requests_difference, input_tokens_difference,
                   cached_input_tokens_difference, output_tokens_difference, ours_cost_nano_usd, upstream_cost_nano_usd,
                   cost_nano_usd_difference
            FROM upstream_reconciliation WHERE day = ? ORDER BY model""";

    private static final String BEYOND_SQL = """
            SELECT count(*) FROM upstream_reconciliation WHERE day = ? AND (requests_difference, input_tokens_difference,
                   cached_input_tokens_difference, output_tokens_difference, cost_nano_usd_difference) <> (0, 0, 0, 0, 0)""";

    private final String jdbcUrl;
    private final String user;
    private final String password;

    UpstreamCheck(String jdbcUrl, String user, String password) {
        this.jdbcUrl = jdbcUrl;
        this.user = user;
        this.password = password;
    }

    /** The billing sink's UPSTREAM_* settings for the demo: every 2 s, today included, zero tolerance. */
    static Map<String, String> sinkEnv(FakeOpenAi upstream) {
        return Map.of("UPSTREAM_ADMIN_KEY", upstream.adminKey(), "UPSTREAM_BASE_URL", upstream.baseUrl(),
                "UPSTREAM_RECONCILE_INTERVAL", "2s", "UPSTREAM_REREAD_DAYS", "0", "UPSTREAM_CHECK_OPEN_DAY", "true",
                "UPSTREAM_TOLERANCE_REQUESTS", "0", "UPSTREAM_TOLERANCE_TOKENS", "0", "UPSTREAM_TOLERANCE_NANO_USD", "0");
    }

    boolean awaitAndPrint(Duration timeout, PrintStream out) throws SQLException {
        LocalDate today = LocalDate.now(ZoneOffset.UTC);
        // A run whose reads began after the drain: its transaction starts (read_at) well after them.
        Instant after = Instant.now().plusSeconds(1);
        long deadline = System.nanoTime() + timeout.toNanos();
        try (Connection db = DriverManager.getConnection(jdbcUrl, user, password)) {
            while (!readSince(db, today, after)) {
                if (System.nanoTime() > deadline) {
                    out.println();
                    out.println("FAIL: the billing sink's upstream reconciler did not read " + today + " within " + timeout
                            + " (see billing-sink.log)");
                    return false;
                }
                Stack.pause(Duration.ofMillis(500));
            }
            out.println();
            out.println("Upstream reconciliation " + today + " (our service-credit calls vs the upstream's Usage and Costs"
                    + " APIs, upstream - ours; ADR 0086)");
            SqlReport.print(db, out, TODAY_SQL, today);
            long beyond;
            try (PreparedStatement s = db.prepareStatement(BEYOND_SQL)) {
                s.setObject(1, today);
                try (ResultSet rs = s.executeQuery()) {
                    rs.next();
                    beyond = rs.getLong(1);
                }
            }
            out.println("models with an upstream difference beyond tolerance (0): " + beyond);
            return beyond == 0;
        }
    }

    private static boolean readSince(Connection db, LocalDate day, Instant after) throws SQLException {
        try (PreparedStatement s = db.prepareStatement("SELECT read_at FROM upstream_read_day WHERE day = ?")) {
            s.setObject(1, day);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() && rs.getTimestamp(1).after(Timestamp.from(after));
            }
        }
    }
}
