package dev.tokenmeter.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.List;

/**
 * Issue 17's spend controls and attribution in the demo, set the way an operator sets them, through the edge's admin
 * API: the starter plan may call only the small models (a bigger one is answered 403 {@code model_not_allowed} and
 * billed as a $0 REJECTED event), alice's key belongs to the project {@code support-bot}, and the demo traffic carries
 * {@code feature} and {@code customer} labels, which the aggregator rolls up ({@link #ROLLUP_DIMENSIONS}); issue 19's
 * response cache is turned on for one plan ({@link DemoRedisFront}). After the
 * traffic the demo prints spend per customer from the usage API and checks finance's {@code reconciliation_rollup}.
 */
final class DemoControls {

    static final String ROLLUP_DIMENSIONS = "feature,customer";
    /** The starter plan's allow-list: o3 and gpt-4o (and their tiers) are refused; snapshots of these are admitted. */
    static final List<String> STARTER_MODELS = List.of("gpt-4o-mini", "gpt-4.1-mini", "gpt-5-nano", "o4-mini",
            "text-embedding-3-small");
    static final String PROJECT_USER = "alice";
    static final String PROJECT = "support-bot";
    /** alice's and bob's tenant gets a monthly budget shared by its users (ADR 0081), more than the demo spends. */
    static final String BUDGET_TENANT = "acme";
    static final String TENANT_BUDGET_USD = "1.00";

    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newHttpClient();
    private final Stack stack;

    DemoControls(Stack stack) {
        this.stack = stack;
    }

    /** Sets the allow-list and the project through the admin API; fails loudly when the edge refuses either. */
    void apply(PrintStream out) throws Exception {
        send("PUT", "/admin/plans/starter", JSON.writeValueAsString(java.util.Map.of("allowed_models", STARTER_MODELS)));
        out.println("allow-list  plan starter: " + String.join(", ", STARTER_MODELS) + " (anything else: 403 model_not_allowed)");
        String keyId;
        try (Connection db = connect();
             PreparedStatement q = db.prepareStatement("SELECT api_key_id FROM api_key WHERE user_id = ? ORDER BY created_at LIMIT 1")) {
            q.setString(1, PROJECT_USER);
            try (ResultSet rs = q.executeQuery()) {
                if (!rs.next()) {
                    throw new IllegalStateException("no key of " + PROJECT_USER);
                }
                keyId = rs.getString(1);
            }
        }
        send("PUT", "/admin/users/" + PROJECT_USER + "/keys/" + keyId + "/project", "{\"project\":\"" + PROJECT + "\"}");
        out.println("project     " + PROJECT_USER + "'s key -> " + PROJECT + "; labels feature, customer rolled up per value");
        send("PUT", "/admin/tenants/" + BUDGET_TENANT + "/budget", "{\"monthly_budget_usd\":\"" + TENANT_BUDGET_USD + "\"}");
        out.println("budget      tenant " + BUDGET_TENANT + ": $" + TENANT_BUDGET_USD + " a month shared by its users (past it: 429 tenant_budget_exceeded)");
        send("PUT", "/admin/plans/" + DemoRedisFront.CACHE_PLAN, DemoRedisFront.planCacheBody());
        out.println("cache       plan " + DemoRedisFront.CACHE_PLAN + ": deterministic answers cached "
                + DemoRedisFront.CACHE_TTL_SECONDS + " s, a hit billed " + DemoRedisFront.HIT_PRICE_PERCENT + " % (ADR 0074, 0075)");
    }

    /**
     * Prints this month's spend per customer label from the usage API and the allow-list's refusals; returns whether
     * finance's rollup reconciliation shows no difference (every dimension adds up to the ledger).
     */
    boolean report(PrintStream out, DemoTraffic.Caller tenantMember) throws Exception {
        long monthStart = YearMonth.now(ZoneOffset.UTC).atDay(1).atStartOfDay(ZoneOffset.UTC).toEpochSecond();
        JsonNode page = JSON.readTree(send("GET", "/admin/usage?start_time=" + monthStart
                + "&bucket_width=1mo&limit=1&group_by=customer", null));
        out.println();
        out.println("Spend by customer label this month (usage API: GET /admin/usage?bucket_width=1mo&group_by=customer)");
        out.printf("  %-12s %10s %16s%n", "customer", "requests", "cost USD");
        for (JsonNode r : page.at("/data/0/results")) {
            out.printf("  %-12s %10d %16s%n", r.at("/labels/customer").asText(), r.get("num_model_requests").asLong(),
                    r.at("/amount/value").asText());
        }
        // The tenant budget as a member of the tenant sees it (GET /v1/usage limits) next to the ledger's sum.
        YearMonth month = YearMonth.now(ZoneOffset.UTC);
        HttpResponse<String> usage = http.send(HttpRequest.newBuilder(stack.edgeUrl().resolve("/v1/usage?month=" + month))
                .header("Authorization", "Bearer " + tenantMember.apiKey()).GET().build(), HttpResponse.BodyHandlers.ofString());
        JsonNode limits = JSON.readTree(usage.body()).path("limits");
        try (Connection db = connect()) {
            long ledger;
            try (PreparedStatement q = db.prepareStatement("SELECT coalesce(sum(cost_nano_usd), 0) FROM usage_ledger"
                    + " WHERE tenant_id = ? AND key_source = 'SERVICE_CREDIT' AND billing_month = ?")) {
                q.setString(1, BUDGET_TENANT);
                q.setObject(2, month.atDay(1));
                try (ResultSet rs = q.executeQuery()) {
                    rs.next();
                    ledger = rs.getLong(1);
                }
            }
            out.println("tenant " + BUDGET_TENANT + " this month (GET /v1/usage limits): used "
                    + limits.path("tenant_used_usd").asText("?") + " of " + limits.path("tenant_monthly_budget_usd").asText("?")
                    + " USD; the ledger's service-credit sum: " + dev.tokenmeter.events.money.Money.formatUsd(ledger) + " USD");
            out.println("calls refused by the starter plan's allow-list (REJECTED, $0): " + scalar(db,
                    "SELECT count(*) FROM usage_ledger WHERE attributes ->> 'reject_reason' = 'model_not_allowed'"));
            // The rollups travel on their own topic: give them the time the totals had to catch up with the ledger.
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
            long diffs;
            long rows;
            do {
                diffs = scalar(db, "SELECT count(*) FROM reconciliation_rollup"
                        + " WHERE cost_difference_nano_usd <> 0 OR event_difference <> 0");
                rows = scalar(db, "SELECT count(*) FROM reconciliation_rollup");
                if (rows > 0 && diffs == 0) {
                    break;
                }
                Thread.sleep(500);
            } while (System.nanoTime() < deadline);
            out.println("rollup reconciliation (reconciliation_rollup): " + rows + " user-month-dimensions, "
                    + diffs + " with a difference from the ledger");
            return rows > 0 && diffs == 0;
        }
    }

    private String send(String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(stack.edgeAdmin().baseUrl() + path))
                .header("Authorization", "Bearer " + stack.edgeAdmin().token());
        if (body != null) {
            b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body));
        } else {
            b.method(method, HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() / 100 != 2) {
            throw new IllegalStateException(method + " " + path + ": HTTP " + r.statusCode() + " " + r.body());
        }
        return r.body();
    }

    private Connection connect() throws SQLException {
        return DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
    }

    private static long scalar(Connection db, String sql) throws SQLException {
        try (ResultSet rs = db.createStatement().executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
