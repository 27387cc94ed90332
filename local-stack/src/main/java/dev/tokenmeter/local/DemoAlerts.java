package dev.tokenmeter.local;

import java.io.PrintStream;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;

/** The demo's alert summary: what the demo webhook received, and the notifier's delivery log. */
final class DemoAlerts {

    static final String DELIVERY_LOG_SQL = "SELECT d.alert_id, d.status, d.attempts, d.last_http_status "
            + "FROM webhook_delivery d ORDER BY d.alert_id";

    private DemoAlerts() {
    }

    /**
     * Waits until the notifier has no delivery pending (at least 3 s, for alerts still on their way from the drained
     * pipeline; at most {@code timeout}), then prints both sides. A short run may cross no threshold: nothing arrives.
     */
    static void print(Stack stack, DemoWebhook webhook, Duration timeout, PrintStream out) throws SQLException {
        long start = System.nanoTime();
        long deadline = start + timeout.toNanos();
        try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())) {
            while (System.nanoTime() < deadline
                    && (System.nanoTime() - start < Duration.ofSeconds(3).toNanos() || pending(db) > 0)) {
                Stack.pause(Duration.ofMillis(500));
            }
            out.println();
            out.println("Alerts delivered to the demo webhook " + webhook.url() + " (signature verified, each delivery id once; "
                    + webhook.badSignatures() + " refused)");
            webhook.arrived().forEach(a -> out.println("  " + a.alertId() + "  " + a.thresholdPercent() + " %  cost $" + a.costUsd()));
            out.println("Delivery log (webhook_delivery)");
            SqlReport.print(db, out, DELIVERY_LOG_SQL);
        }
    }

    private static int pending(Connection db) throws SQLException {
        try (ResultSet rs = db.createStatement().executeQuery("SELECT count(*) FROM webhook_delivery WHERE status = 'pending'")) {
            rs.next();
            return rs.getInt(1);
        }
    }
}
