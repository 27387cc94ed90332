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

    /** Waits (up to {@code timeout}) until the notifier has no delivery pending, then prints both sides. */
    static void print(Stack stack, DemoWebhook webhook, Duration timeout, PrintStream out) throws SQLException {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())) {
            while (System.nanoTime() < deadline && (pending(db) > 0 || webhook.arrived().isEmpty())) {
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
