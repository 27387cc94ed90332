package dev.tokenmeter.local;

import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 17, attribution, through the shipped jars on real engines: the operator gives a service key a project
 * through the edge's admin API; a proxied call with {@code x-tokenmeter-tags} and a metering-API commit with a body
 * {@code labels} object each land in the ledger with that project and their labels; a call with a bad label is
 * answered 400 {@code invalid_request_error} naming the label, with no upstream call.
 */
@ExtendWith(EnginesExtension.class)
class AttributionIT {

    private final HttpClient http = HttpClient.newHttpClient();

    @Test
    void projectAndLabelsReachTheLedgerAndABadLabelIsRefusedBeforeTheUpstream(Engines engines, @TempDir Path workDir)
            throws Exception {
        String prefix = Names.unique("attr") + ".";
        try (FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix, (service, env) -> {
                 if (service.startsWith("aggregator")) {
                     env.put("ROLLUP_DIMENSIONS", "feature,customer");
                     env.put("ROLLUP_MAX_VALUES_PER_USER", "1");
                 }
             })) {
            DemoTraffic.Caller caller = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                    stack.kafka(), stack.topics(), prefix).callers().get(0);
            String apiKeyId = apiKeyId(stack, caller.userId());

            HttpResponse<String> bad = admin(stack, apiKeyId, caller.userId(), "{\"project\":\"not ok\"}");
            assertThat(bad.statusCode()).as(bad.body()).isEqualTo(400);
            HttpResponse<String> set = admin(stack, apiKeyId, caller.userId(), "{\"project\":\"support-bot\"}");
            assertThat(set.statusCode()).as(set.body()).isEqualTo(200);
            assertThat(set.body()).contains("\"project\":\"support-bot\"");

            // A bad label: 400 naming it, no upstream call.
            int upstreamBefore = upstream.requestCount();
            HttpResponse<String> refused = chat(stack, caller, "feature=chat,Customer=acme");
            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(400);
            assertThat(refused.body()).contains("invalid_request_error").contains("\"param\":\"x-tokenmeter-tags\"")
                    .contains("'Customer'");
            assertThat(upstream.requestCount()).as("no upstream call for a bad label").isEqualTo(upstreamBefore);

            // The project is seen within the edge's key cache TTL (the admin API invalidates this edge's at once).
            HttpResponse<String> ok = chat(stack, caller, "feature=chat, customer=acme");
            assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
            String proxied = ok.headers().firstValue("x-tokenmeter-event-id").orElseThrow();

            // The metering API: labels in the commit's body.
            HttpResponse<String> reserved = post(stack, "/v1/metering/reservations", caller,
                    "{\"model\":\"gpt-4o-mini\",\"estimated_prompt_tokens\":100,\"max_completion_tokens\":50}");
            assertThat(reserved.statusCode()).as(reserved.body()).isEqualTo(201);
            String reservationId = reserved.body().replaceAll(".*\"reservation_id\":\"([^\"]+)\".*", "$1");
            HttpResponse<String> committed = post(stack, "/v1/metering/reservations/"
                    + java.net.URLEncoder.encode(reservationId, java.nio.charset.StandardCharsets.UTF_8) + "/commit", caller,
                    "{\"prompt_tokens\":90,\"completion_tokens\":40,\"labels\":{\"feature\":\"search\",\"customer\":\"initech\"}}");
            assertThat(committed.statusCode()).as(committed.body()).isEqualTo(200);
            String metered = committed.headers().firstValue("x-tokenmeter-event-id").orElseThrow();

            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
                 PreparedStatement row = db.prepareStatement(
                         "SELECT project, labels::text FROM usage_ledger WHERE event_id = ?")) {
                await("the proxied call's ledger row (event " + proxied + ")").atMost(Duration.ofSeconds(90))
                        .until(() -> ledger(row, proxied) != null);
                assertThat(ledger(row, proxied)).isEqualTo("support-bot {\"feature\": \"chat\", \"customer\": \"acme\"}");
                await("the metered call's ledger row (event " + metered + ")").atMost(Duration.ofSeconds(90))
                        .until(() -> ledger(row, metered) != null);
                assertThat(ledger(row, metered)).isEqualTo("support-bot {\"feature\": \"search\", \"customer\": \"initech\"}");
            }

            // Rollups through the aggregator and the sink (cap 1: the second feature and customer are '(other)'),
            // and finance's view: every dimension adds up to the ledger's total of the user's month.
            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
                 PreparedStatement view = db.prepareStatement("SELECT dimension, cost_difference_nano_usd, event_difference,"
                         + " ledger_events, rollup_cost_nano_usd FROM reconciliation_rollup WHERE user_id = ? ORDER BY dimension");
                 PreparedStatement values = db.prepareStatement("SELECT dimension || '=' || value FROM usage_rollup_monthly"
                         + " WHERE user_id = ? AND project = 'support-bot' AND cost_nano_usd > 0 ORDER BY 1")) {
                view.setString(1, caller.userId());
                values.setString(1, caller.userId());
                await("the rollups of " + caller.userId() + " reconcile with the ledger").atMost(Duration.ofSeconds(90))
                        .until(() -> reconciled(view));
                assertThat(rows(values)).containsExactly("(all)=(all)", "customer=(other)", "customer=acme",
                        "feature=(other)", "feature=chat");

                // The usage API reads the same rollups: the caller's month per customer adds up to its ledger.
                long monthStart = java.time.YearMonth.now(java.time.ZoneOffset.UTC).atDay(1)
                        .atStartOfDay(java.time.ZoneOffset.UTC).toEpochSecond();
                HttpResponse<String> usage = http.send(HttpRequest.newBuilder(stack.edgeUrl().resolve(
                                "/v1/usage?start_time=" + monthStart + "&bucket_width=1mo&limit=1&group_by=project_id,customer"))
                        .header("Authorization", "Bearer " + caller.apiKey()).GET().build(), HttpResponse.BodyHandlers.ofString());
                assertThat(usage.statusCode()).as(usage.body()).isEqualTo(200);
                Map<String, Long> byCustomer = new java.util.TreeMap<>();
                for (var r : new com.fasterxml.jackson.databind.ObjectMapper().readTree(usage.body()).at("/data/0/results")) {
                    byCustomer.merge(r.get("project_id").asText() + "/" + r.at("/labels/customer").asText(),
                            r.get("cost_nano_usd").asLong(), Long::sum);
                }
                try (PreparedStatement ledger = db.prepareStatement("SELECT coalesce(sum(cost_nano_usd), 0) FROM usage_ledger"
                        + " WHERE user_id = ? AND billing_month = date_trunc('month', now() AT TIME ZONE 'UTC')::date")) {
                    ledger.setString(1, caller.userId());
                    try (ResultSet rs = ledger.executeQuery()) {
                        rs.next();
                        assertThat(byCustomer.values().stream().mapToLong(Long::longValue).sum()).as(usage.body())
                                .isEqualTo(rs.getLong(1)).isPositive();
                    }
                }
                assertThat(byCustomer).containsKeys("support-bot/acme", "support-bot/(other)");
            }
        }
    }

    private HttpResponse<String> chat(Stack stack, DemoTraffic.Caller caller, String tags) throws Exception {
        return http.send(HttpRequest.newBuilder(stack.edgeUrl().resolve("/v1/chat/completions"))
                .header("Authorization", "Bearer " + caller.apiKey())
                .header("Content-Type", "application/json")
                .header("x-tokenmeter-tags", tags)
                .POST(HttpRequest.BodyPublishers.ofString(
                        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(Stack stack, String path, DemoTraffic.Caller caller, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(stack.edgeUrl().resolve(path))
                .header("Authorization", "Bearer " + caller.apiKey())
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> admin(Stack stack, String apiKeyId, String userId, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(stack.edgeAdmin().baseUrl()
                        .resolve("/admin/users/" + userId + "/keys/" + apiKeyId + "/project"))
                .header("Authorization", "Bearer " + stack.edgeAdmin().token())
                .header("Content-Type", "application/json")
                .PUT(HttpRequest.BodyPublishers.ofString(body))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String apiKeyId(Stack stack, String userId) throws Exception {
        try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
             PreparedStatement q = db.prepareStatement("SELECT api_key_id FROM api_key WHERE user_id = ? ORDER BY created_at LIMIT 1")) {
            q.setString(1, userId);
            try (ResultSet rs = q.executeQuery()) {
                assertThat(rs.next()).as("a key of " + userId).isTrue();
                return rs.getString(1);
            }
        }
    }

    /** Three dimensions, each with zero difference in cost and events from a ledger that holds the calls. */
    private static boolean reconciled(PreparedStatement view) throws Exception {
        List<String> dims = new java.util.ArrayList<>();
        try (ResultSet rs = view.executeQuery()) {
            while (rs.next()) {
                if (rs.getLong(2) != 0 || rs.getLong(3) != 0 || rs.getLong(4) < 2 || rs.getLong(5) <= 0) {
                    return false;
                }
                dims.add(rs.getString(1));
            }
        }
        return dims.equals(List.of("(all)", "customer", "feature"));
    }

    private static List<String> rows(PreparedStatement q) throws Exception {
        List<String> out = new java.util.ArrayList<>();
        try (ResultSet rs = q.executeQuery()) {
            while (rs.next()) {
                out.add(rs.getString(1));
            }
        }
        return out;
    }

    /** "project labels" of the event's ledger row, or null while there is none. */
    private static String ledger(PreparedStatement row, String eventId) throws Exception {
        row.setObject(1, eventId, java.sql.Types.OTHER);
        try (ResultSet rs = row.executeQuery()) {
            return rs.next() ? rs.getString(1) + " " + rs.getString(2) : null;
        }
    }
}
