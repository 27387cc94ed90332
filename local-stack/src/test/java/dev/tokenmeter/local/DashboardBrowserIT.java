package dev.tokenmeter.local;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.math.BigDecimal;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.LocalDate;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 17, the dashboard in a real browser (ADR 0082): the stack from its shipped jars carries demo traffic until the
 * ledger is drained; headless Chromium opens {@code /admin/dashboard#token=...} on the edge's admin listener, and
 * every number it shows for the month (top users' billed and real-time spend, by model and key source, today's bar)
 * equals the ledger's sum in Postgres; every section loaded (pipeline and alerts through the edge's own Kafka
 * principal and database role), the reconciliation shows "reconciled", the token is gone from the address. Then the
 * user view ({@code /dashboard#key=...} on the public listener) shows that user's ledger total. Screenshots in
 * local-stack/target/dashboard-*.png.
 */
@ExtendWith(EnginesExtension.class)
class DashboardBrowserIT {

    private static final Path SCREENSHOTS = Path.of("target");

    @Test
    void theDashboardShowsTheLedgersNumbers(Engines engines, @TempDir Path workDir) throws Exception {
        String prefix = Names.unique("dash") + ".";
        try (FakeOpenAi upstream = FakeOpenAi.start();
             // Rollups (the top projects' source) are on only with ROLLUP_DIMENSIONS, as in the demo (ADR 0078).
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix, (service, env) -> {
                 if (service.equals(Stack.AGGREGATOR_JAR)) {
                     env.put("ROLLUP_DIMENSIONS", DemoControls.ROLLUP_DIMENSIONS);
                 }
             })) {
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(), stack.kafka(), stack.topics(), prefix);
            // One user's keys belong to a project, so the top-projects table has a project and "(none)" to show.
            String projectUser = demo.callers().get(0).userId();
            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
                 PreparedStatement q = db.prepareStatement("UPDATE api_key SET project = 'support-bot' WHERE user_id = ?")) {
                q.setString(1, projectUser);
                assertThat(q.executeUpdate()).as("keys of " + projectUser).isPositive();
            }
            DemoTraffic.Report report = new DemoTraffic(stack.edgeUrl(), demo.callers())
                    .run(Duration.ofSeconds(8), 15, 42, System.err);
            assertThat(new Reconciliation(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())
                    .awaitDrained(report, Duration.ofSeconds(60), System.out)).as("the pipeline drained").isTrue();

            YearMonth month = YearMonth.now(ZoneOffset.UTC);
            Map<String, String> byUser;
            Map<String, String> byUserOnCredit;
            Map<String, String> byModel;
            String today;
            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())) {
                byUser = sums(db, "SELECT user_id, sum(cost_nano_usd) FROM usage_ledger WHERE billing_month = ? GROUP BY 1", month.atDay(1));
                byUserOnCredit = sums(db, "SELECT user_id, sum(cost_nano_usd) FILTER (WHERE key_source = 'SERVICE_CREDIT')"
                        + " FROM usage_ledger WHERE billing_month = ? GROUP BY 1", month.atDay(1));
                byModel = sums(db, "SELECT model || '|' || key_source, sum(cost_nano_usd) FROM usage_ledger WHERE billing_month = ? GROUP BY 1",
                        month.atDay(1));
                today = sums(db, "SELECT 'today', coalesce(sum(cost_nano_usd), 0) FROM usage_ledger WHERE billing_month = ?"
                        + " AND occurred_at >= (now() AT TIME ZONE 'UTC')::date AT TIME ZONE 'UTC'", month.atDay(1)).get("today");
            }
            assertThat(byUser).as("ledger users").isNotEmpty();
            Map<String, String> byProject;
            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())) {
                byProject = sums(db, "SELECT coalesce(project, '(none)'), sum(cost_nano_usd) FROM usage_ledger WHERE billing_month = ?"
                        + " GROUP BY 1", month.atDay(1));
            }
            assertThat(byProject).as("ledger projects").containsKeys("support-bot", "(none)");

            try (HeadlessChrome chrome = HeadlessChrome.start(workDir.resolve("chromedriver"))) {
                chrome.open(stack.edgeAdmin().baseUrl() + "/admin/dashboard#token=" + stack.edgeAdmin().token());
                awaitLoaded(chrome, "#top-users tbody tr");
                chrome.screenshot(SCREENSHOTS.resolve("dashboard-admin.png"));

                assertThat(chrome.execute("return location.href").asText()).as("the token left the address")
                        .doesNotContain(stack.edgeAdmin().token()).doesNotContain("#");
                JsonNode errors = chrome.execute("return [...document.querySelectorAll('[data-error]')].map(e => e.dataset.error + ': ' + e.textContent)"
                        + ".filter(t => !t.endsWith(': '))");
                assertThat(errors.size()).as("sections that failed: " + errors).isZero();

                // Top projects come from the attribution rollups, a topic of their own: reload until they caught up.
                await("top projects = the ledger's spend per project").atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofSeconds(2))
                        .untilAsserted(() -> {
                            chrome.open(stack.edgeAdmin().baseUrl() + "/admin/dashboard#token=" + stack.edgeAdmin().token());
                            awaitLoaded(chrome, "#top-projects tbody tr");
                            assertThat(rows(chrome, "#top-projects tbody tr[data-project]", "tr.dataset.project", ".cost"))
                                    .isEqualTo(top(byProject, 10));
                        });
                Map<String, String> shownBilled = rows(chrome, "#top-users tbody tr", "tr.dataset.user", ".cost");
                Map<String, String> shownUsed = rows(chrome, "#top-users tbody tr", "tr.dataset.user", ".used");
                Map<String, String> expectedTop = top(byUser, 10);
                assertThat(shownBilled).as("top users' billed spend = the ledger's").isEqualTo(expectedTop);
                // The credit is spent by service-credit calls only (a personal key's calls are the user's own bill).
                Map<String, String> expectedUsed = new LinkedHashMap<>();
                expectedTop.keySet().forEach(u -> expectedUsed.put(u, byUserOnCredit.get(u)));
                assertThat(shownUsed).as("top users' credit used now (real time) = the ledger's service-credit spend").isEqualTo(expectedUsed);
                assertThat(rows(chrome, "#by-model tbody tr", "tr.dataset.model + '|' + tr.dataset.keySource", ".cost"))
                        .as("by model and key source = the ledger's").isEqualTo(byModel);
                String day = LocalDate.now(ZoneOffset.UTC).toString();
                assertThat(chrome.execute("const b = document.querySelector('#daily-chart rect[data-day=\"" + day + "\"]');"
                        + " return b ? b.querySelector('title').textContent : null").asText())
                        .as("today's bar").isEqualTo(day + ": $" + today);
                assertThat(chrome.execute("return document.querySelector('[data-field=reconciliation]').textContent").asText())
                        .isEqualTo("reconciled");
                assertThat(chrome.execute("return [...document.querySelectorAll('#lag tbody tr[data-group] td.num')].map(t => t.textContent)"
                        + ".filter(t => !/^[0-9]+$/.test(t)).length + '/' + document.querySelectorAll('#lag tbody tr[data-group]').length").asText())
                        .as("the billing sink's groups and the aggregator's, each with a lag").matches("0/[1-9][0-9]*");
                // Drained: the sink is at the end of every topic it reads (the totals topics' last offsets are the
                // aggregator's transaction markers, not records).
                HttpClient http = HttpClient.newHttpClient();
                await("the billing sink's and the aggregator's lag is 0 once drained").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofSeconds(1))
                        .untilAsserted(() -> assertThat(http.send(HttpRequest.newBuilder(stack.edgeAdmin().baseUrl().resolve("/admin/pipeline"))
                                .header("Authorization", "Bearer " + stack.edgeAdmin().token()).build(), HttpResponse.BodyHandlers.ofString()).body())
                                .contains("\"lag_records\":0").doesNotContainPattern("\"lag_records\":([1-9]|null)"));

                // The user view on the public listener, with the user's own key.
                DemoTraffic.Caller caller = demo.callers().stream().filter(c -> byUser.containsKey(c.userId())).findFirst().orElseThrow();
                chrome.open(stack.edgeUrl() + "/dashboard#key=" + caller.apiKey());
                awaitLoaded(chrome, "#user [data-field=billed]");
                chrome.screenshot(SCREENSHOTS.resolve("dashboard-user.png"));
                assertThat(chrome.execute("return document.querySelector('#user [data-field=user]').textContent").asText())
                        .isEqualTo(caller.userId());
                assertThat(chrome.execute("return document.querySelector('#user [data-field=billed]').textContent").asText())
                        .as("the user's billed month = the ledger's").isEqualTo(byUser.get(caller.userId()));
                assertThat(chrome.execute("return location.href").asText()).doesNotContain(caller.apiKey());
            }
        }
    }

    private static void awaitLoaded(HeadlessChrome chrome, String selector) {
        await("the page loaded and shows " + selector).atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(300))
                .until(() -> chrome.execute("return document.body.hasAttribute('data-loaded') && !!document.querySelector('"
                        + selector + "')").asBoolean());
    }

    /** key (a JS expression over {@code tr}) -> the text of the cell {@code cell} of each row. */
    private static Map<String, String> rows(HeadlessChrome chrome, String rowSelector, String key, String cell) throws Exception {
        JsonNode pairs = chrome.execute("return [...document.querySelectorAll('" + rowSelector + "')].map(tr => [" + key
                + ", tr.querySelector('" + cell + "').textContent])");
        Map<String, String> out = new LinkedHashMap<>();
        pairs.forEach(p -> out.put(p.get(0).asText(), p.get(1).asText()));
        return out;
    }

    private static Map<String, String> top(Map<String, String> byUser, int n) {
        Map<String, String> out = new LinkedHashMap<>();
        byUser.entrySet().stream()
                .sorted((a, b) -> {
                    int c = new BigDecimal(b.getValue()).compareTo(new BigDecimal(a.getValue()));
                    return c != 0 ? c : a.getKey().compareTo(b.getKey());
                })
                .limit(n).forEach(e -> out.put(e.getKey(), e.getValue()));
        return out;
    }

    /** Each row's first column -> its second, a nano-USD sum, as the API's exact decimal string. */
    private static Map<String, String> sums(Connection db, String sql, LocalDate month) throws Exception {
        Map<String, String> out = new LinkedHashMap<>();
        try (PreparedStatement q = db.prepareStatement(sql)) {
            q.setObject(1, month);
            try (ResultSet rs = q.executeQuery()) {
                while (rs.next()) {
                    out.put(rs.getString(1), BigDecimal.valueOf(rs.getLong(2), 9).toPlainString());
                }
            }
        }
        return out;
    }
}
