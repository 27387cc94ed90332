package dev.tokenmeter.edge.usage;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.csv.CsvTable;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_HOURLY;
import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 17, usage API (ADR 0079): the OpenAI-shaped {@code GET /v1/usage} and {@code GET /admin/usage} on the real
 * Postgres and Redis. Three days of hourly totals rows (random, seeded) for three users of one tenant plus one of
 * another are written the way the sink writes them; every answer is compared with sums the test computes from those
 * rows itself.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class UsageQueryApiIT {

    private static final String ADMIN = "admin-" + UUID.randomUUID();
    private static final Instant START = Instant.parse("2024-02-28T00:00:00Z"); // the 28th, the leap day and March 1st
    private static final int HOURS = 72;
    private static final String ODD_MODEL = "ft:gpt-4o-mini:acme,\"x\"";  // a comma and quotes: CSV must quote it
    private static final List<String> MODELS = List.of("gpt-4o-mini", ODD_MODEL);

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls admin;
    private ApiCalls pub;
    private String tenant;
    private String otherTenant;
    private EdgeTestBed.User a1;
    private List<String> tenantUsers;
    private String otherUser;
    /** Every row written: (hour, user, model) -> {count, prompt, cached, completion, reasoning, cost}. */
    private final List<Row> rows = new ArrayList<>();

    record Row(Instant hour, String tenant, String user, String model, long count, long prompt, long cached,
               long completion, long reasoning, long cost) {}

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of("ADMIN_TOKEN", ADMIN));
        admin = new ApiCalls(bed.adminUrl());
        pub = new ApiCalls(bed.baseUrl());
        String run = UUID.randomUUID().toString().substring(0, 8);
        tenant = "ten-" + run;
        otherTenant = "other-" + run;
        a1 = bed.newUser(1_000_000_000_000L);
        tenantUsers = List.of(a1.userId(), "u2-" + run, "u3-" + run);
        otherUser = "u4-" + run;
        Random random = new Random(17);
        for (int h = 0; h < HOURS; h++) {
            Instant hour = START.plus(h, ChronoUnit.HOURS);
            for (String user : List.of(tenantUsers.get(0), tenantUsers.get(1), tenantUsers.get(2), otherUser)) {
                for (String model : MODELS) {
                    if (random.nextInt(3) == 0) {
                        continue; // gaps: not every user calls every model every hour
                    }
                    long count = 1 + random.nextInt(40);
                    rows.add(new Row(hour, user.equals(otherUser) ? otherTenant : tenant, user, model, count,
                            count * random.nextInt(2_000), count * random.nextInt(100), count * random.nextInt(500),
                            random.nextInt(50), 1 + (long) random.nextInt(1_000_000_000)));
                }
            }
        }
        for (Row r : rows) {
            var t = USAGE_TOTAL_HOURLY;
            bed.db.insertInto(t).set(t.USER_ID, r.user()).set(t.MODEL, r.model()).set(t.KEY_SOURCE, "SERVICE_CREDIT")
                    .set(t.HOUR_START, OffsetDateTime.ofInstant(r.hour(), ZoneOffset.UTC)).set(t.TENANT_ID, r.tenant())
                    .set(t.EVENT_COUNT, r.count()).set(t.SUCCEEDED_COUNT, r.count()).set(t.FAILED_COUNT, 0L)
                    .set(t.CANCELLED_COUNT, 0L).set(t.REJECTED_COUNT, 0L).set(t.PROMPT_TOKENS, r.prompt())
                    .set(t.CACHED_PROMPT_TOKENS, r.cached()).set(t.COMPLETION_TOKENS, r.completion())
                    .set(t.REASONING_TOKENS, r.reasoning()).set(t.COST_NANO_USD, r.cost()).set(t.REVISION, 1L).execute();
        }
        Map<List<Object>, Long> monthly = new HashMap<>();
        rows.forEach(r -> monthly.merge(List.of(r.user(), r.tenant(), r.model(),
                LocalDate.ofInstant(r.hour(), ZoneOffset.UTC).withDayOfMonth(1)), r.cost(), Long::sum));
        monthly.forEach((k, cost) -> {
            var t = USAGE_TOTAL_MONTHLY;
            bed.db.insertInto(t).set(t.USER_ID, (String) k.get(0)).set(t.TENANT_ID, (String) k.get(1))
                    .set(t.MODEL, (String) k.get(2)).set(t.KEY_SOURCE, "SERVICE_CREDIT").set(t.BILLING_MONTH, (LocalDate) k.get(3))
                    .set(t.EVENT_COUNT, 1L).set(t.SUCCEEDED_COUNT, 1L).set(t.FAILED_COUNT, 0L).set(t.CANCELLED_COUNT, 0L)
                    .set(t.REJECTED_COUNT, 0L).set(t.PROMPT_TOKENS, 0L).set(t.CACHED_PROMPT_TOKENS, 0L)
                    .set(t.COMPLETION_TOKENS, 0L).set(t.REASONING_TOKENS, 0L).set(t.COST_NANO_USD, cost).set(t.REVISION, 1L)
                    .execute();
        });
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private static String q(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    private String range() {
        return "start_time=" + START.getEpochSecond() + "&end_time=" + START.plus(HOURS, ChronoUnit.HOURS).getEpochSecond();
    }

    private JsonNode ok(ApiCalls api, String path, String bearer) throws Exception {
        HttpResponse<String> r = api.send("GET", path, bearer, null);
        assertThat(r.statusCode()).as(path + " -> " + r.body()).isEqualTo(200);
        return ApiCalls.json(r);
    }

    /** Follows next_page to the end; returns (bucket start | model | user) -> cost, failing on any key seen twice. */
    private Map<String, Long> allPages(ApiCalls api, String bearer, String path, int expectedPages) throws Exception {
        Map<String, Long> seen = new HashMap<>();
        String page = null;
        int pages = 0;
        do {
            JsonNode n = ok(api, path + (page == null ? "" : "&page=" + q(page)), bearer);
            assertThat(n.get("object").asText()).isEqualTo("page");
            pages++;
            for (JsonNode b : n.get("data")) {
                assertThat(b.get("object").asText()).isEqualTo("bucket");
                for (JsonNode r : b.get("results")) {
                    assertThat(r.get("object").asText()).isEqualTo(UsageReport.RESULT_OBJECT);
                    assertThat(r.get("source").asText()).isEqualTo("billed");
                    assertThat(r.at("/amount/value").asText()).isEqualTo(new java.math.BigDecimal(r.get("cost_nano_usd").asLong())
                            .movePointLeft(9).setScale(9).toPlainString());
                    String key = b.get("start_time").asLong() + "|" + r.get("model").asText() + "|" + r.get("user_id").asText();
                    assertThat(seen.put(key, r.get("cost_nano_usd").asLong())).as("seen once: " + key).isNull();
                }
            }
            page = n.get("next_page").isNull() ? null : n.get("next_page").asText();
            assertThat(n.get("has_more").asBoolean()).isEqualTo(page != null);
        } while (page != null && pages < 50);
        assertThat(pages).isEqualTo(expectedPages);
        return seen;
    }

    @Test
    void hourlyPagesOfATenantCoverEveryRowOnceWithTheRowsNumbers() throws Exception {
        Map<String, Long> expected = new HashMap<>();
        rows.stream().filter(r -> r.tenant().equals(tenant))
                .forEach(r -> expected.merge(r.hour().getEpochSecond() + "|" + r.model() + "|" + r.user(), r.cost(), Long::sum));
        Map<String, Long> got = allPages(admin, ADMIN, "/admin/usage?" + range() + "&bucket_width=1h&limit=24&tenant_id="
                + q(tenant) + "&group_by=model&group_by=user_id", 3);
        assertThat(got).isEqualTo(expected);
    }

    @Test
    void dailyAndMonthlyBucketsEqualTheSumsOfTheRows() throws Exception {
        Map<String, Long> daily = new HashMap<>();
        long[] tokens = new long[5];
        rows.stream().filter(r -> r.tenant().equals(tenant)).forEach(r -> {
            daily.merge(r.hour().truncatedTo(ChronoUnit.DAYS).getEpochSecond() + "|" + r.model(), r.cost(), Long::sum);
            tokens[0] += r.count();
            tokens[1] += r.prompt();
            tokens[2] += r.cached();
            tokens[3] += r.completion();
            tokens[4] += r.reasoning();
        });
        JsonNode n = ok(admin, "/admin/usage?" + range() + "&bucket_width=1d&tenant_id=" + q(tenant) + "&group_by=model", ADMIN);
        assertThat(n.get("data").size()).isEqualTo(3);
        assertThat(n.get("has_more").asBoolean()).isFalse();
        Map<String, Long> got = new HashMap<>();
        long[] gotTokens = new long[5];
        for (JsonNode b : n.get("data")) {
            assertThat(b.get("end_time").asLong() - b.get("start_time").asLong()).isEqualTo(86_400);
            for (JsonNode r : b.get("results")) {
                got.put(b.get("start_time").asLong() + "|" + r.get("model").asText(), r.get("cost_nano_usd").asLong());
                assertThat(r.get("user_id").isNull()).isTrue();
                gotTokens[0] += r.get("num_model_requests").asLong();
                gotTokens[1] += r.get("input_tokens").asLong();
                gotTokens[2] += r.get("input_cached_tokens").asLong();
                gotTokens[3] += r.get("output_tokens").asLong();
                gotTokens[4] += r.get("reasoning_tokens").asLong();
            }
        }
        assertThat(got).isEqualTo(daily);
        assertThat(gotTokens).containsExactly(tokens);

        // Calendar months from usage_total_monthly: February and March 2024 of the tenant, ungrouped.
        JsonNode months = ok(admin, "/admin/usage?" + range() + "&bucket_width=1mo&tenant_id=" + q(tenant), ADMIN);
        assertThat(months.get("data").size()).isEqualTo(2);
        assertThat(months.at("/data/0/start_time").asLong()).isEqualTo(Instant.parse("2024-02-01T00:00:00Z").getEpochSecond());
        assertThat(months.at("/data/1/end_time").asLong()).isEqualTo(Instant.parse("2024-04-01T00:00:00Z").getEpochSecond());
        long feb = rows.stream().filter(r -> r.tenant().equals(tenant) && r.hour().isBefore(Instant.parse("2024-03-01T00:00:00Z")))
                .mapToLong(Row::cost).sum();
        long mar = rows.stream().filter(r -> r.tenant().equals(tenant)).mapToLong(Row::cost).sum() - feb;
        assertThat(months.at("/data/0/results/0/cost_nano_usd").asLong()).isEqualTo(feb);
        assertThat(months.at("/data/1/results/0/cost_nano_usd").asLong()).isEqualTo(mar);
    }

    @Test
    void csvIsOneRfc4180RowPerBucketAndGroupAndParsesBackToTheRows() throws Exception {
        HttpResponse<String> r = bed.client.send(HttpRequest.newBuilder(URI.create(bed.adminUrl() + "/admin/usage?" + range()
                        + "&bucket_width=1h&limit=744&tenant_id=" + q(tenant) + "&group_by=model,user_id"))
                .header("Authorization", "Bearer " + ADMIN).header("Accept", "text/csv").GET().build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("content-type").orElse("")).startsWith("text/csv");
        assertThat(r.body()).endsWith("\r\n");
        assertThat(r.body().replace("\r\n", "")).as("every line ends with CRLF").doesNotContain("\n", "\r");
        CsvTable csv = CsvTable.parse(r.body()); // RFC 4180, the same field count in every row as in the header
        assertThat(String.join(",", csv.columns())).isEqualTo(UsageReport.CSV_HEADER);
        List<String> header = csv.columns();
        Map<String, Long> got = new HashMap<>();
        for (List<String> row : csv.rows()) {
            String key = row.get(0) + "|" + row.get(header.indexOf("model")) + "|" + row.get(header.indexOf("user_id"));
            assertThat(got.put(key, Long.parseLong(row.get(header.indexOf("cost_nano_usd"))))).isNull();
            assertThat(new java.math.BigDecimal(row.get(header.indexOf("cost_usd"))).movePointRight(9).longValueExact())
                    .isEqualTo(Long.parseLong(row.get(header.indexOf("cost_nano_usd"))));
        }
        Map<String, Long> expected = new HashMap<>();
        rows.stream().filter(x -> x.tenant().equals(tenant))
                .forEach(x -> expected.merge(x.hour().getEpochSecond() + "|" + x.model() + "|" + x.user(), x.cost(), Long::sum));
        assertThat(got).isEqualTo(expected);
        assertThat(got.keySet()).anyMatch(k -> k.contains(ODD_MODEL));
    }

    @Test
    void aServiceKeyReadsOnlyItsOwnUser() throws Exception {
        long own = rows.stream().filter(r -> r.user().equals(a1.userId())).mapToLong(Row::cost).sum();
        JsonNode n = ok(pub, "/v1/usage?" + range() + "&bucket_width=1d&group_by=model", a1.key());
        long got = 0;
        for (JsonNode b : n.get("data")) {
            for (JsonNode r : b.get("results")) {
                got += r.get("cost_nano_usd").asLong();
            }
        }
        assertThat(got).isEqualTo(own).isPositive();
        assertThat(pub.send("GET", "/v1/usage?" + range() + "&user_id=" + tenantUsers.get(1), a1.key(), null).statusCode())
                .isEqualTo(403);
        assertThat(pub.send("GET", "/v1/usage?" + range() + "&group_by=user_id", a1.key(), null).statusCode()).isEqualTo(400);
        assertThat(pub.send("GET", "/v1/usage?" + range() + "&tenant_id=" + tenant, a1.key(), null).statusCode()).isEqualTo(400);
        assertThat(pub.send("GET", "/v1/usage?" + range(), ADMIN, null).statusCode()).isEqualTo(401);
        assertThat(admin.send("GET", "/admin/usage?" + range(), a1.key(), null).statusCode()).isEqualTo(401);
        // The admin reads one user, or everyone (which includes the other tenant's user).
        JsonNode one = ok(admin, "/admin/usage?" + range() + "&bucket_width=1mo&user_id=" + q(otherUser), ADMIN);
        long other = rows.stream().filter(r -> r.user().equals(otherUser)).mapToLong(Row::cost).sum();
        assertThat(one.at("/data/0/results/0/cost_nano_usd").asLong() + one.at("/data/1/results/0/cost_nano_usd").asLong())
                .isEqualTo(other);
        JsonNode all = ok(admin, "/admin/usage?" + range() + "&bucket_width=1mo&group_by=user_id", ADMIN);
        assertThat(all.toString()).contains(otherUser, a1.userId());
    }

    @Test
    void everyBadParameterIsA400NamingIt() throws Exception {
        String s = "start_time=" + START.getEpochSecond();
        Map<String, String> bad = new java.util.LinkedHashMap<>();
        bad.put("start_time=abc", "start_time");
        bad.put("start_time=1", "start_time");
        bad.put("start_time=99999999999999999999", "start_time");
        bad.put(s + "&start_time=" + START.getEpochSecond(), "start_time");
        bad.put(s + "&end_time=" + START.getEpochSecond(), "end_time");
        bad.put(s + "&end_time=" + START.plus(1_101, ChronoUnit.DAYS).getEpochSecond(), "end_time");
        bad.put(s + "&bucket_width=1m", "bucket_width");
        bad.put(s + "&group_by=project_id&bucket_width=1h", "bucket_width");
        bad.put(s + "&group_by=project_id,model", "group_by");
        bad.put(s + "&group_by=customer&group_by=key_source", "group_by");
        bad.put(s + "&group_by=customer,feature", "group_by");
        bad.put(s + "&group_by=nosuchdimension", "group_by");
        bad.put(s + "&group_by=Customer", "group_by");
        bad.put(s + "&group_by=model,", "group_by");
        bad.put(s + "&limit=0", "limit");
        bad.put(s + "&limit=32", "limit");
        bad.put(s + "&bucket_width=1h&limit=745", "limit");
        bad.put(s + "&limit=ten", "limit");
        bad.put(s + "&page=garbage", "page");
        bad.put(s + "&page=" + UsageQuery.encodePage(START.minus(1, ChronoUnit.DAYS)), "page");
        bad.put(s + "&page=" + UsageQuery.encodePage(START.plusSeconds(1)), "page");
        bad.put(s + "&page=" + "page_" + "A".repeat(80), "page");
        bad.put(s + "&user_id=" + "x".repeat(129), "user_id");
        bad.put(s + "&tenant_id=", "tenant_id");
        bad.put(s + "&colour=red", "colour");
        for (var e : bad.entrySet()) {
            HttpResponse<String> r = admin.send("GET", "/admin/usage?" + e.getKey(), ADMIN, null);
            assertThat(r.statusCode()).as(e.getKey() + " -> " + r.body()).isEqualTo(400);
            assertThat(ApiCalls.json(r).at("/error/param").asText()).as(e.getKey()).isEqualTo(e.getValue());
            assertThat(ApiCalls.json(r).at("/error/type").asText()).isEqualTo("invalid_request_error");
        }
        // The pre-existing month answer still works for existing callers.
        assertThat(ok(pub, "/v1/usage?month=2024-02", a1.key()).get("month").asText()).isEqualTo("2024-02");
        assertThat(pub.send("GET", "/v1/usage?month=2024-02&" + s, a1.key(), null).statusCode()).isEqualTo(400);
    }

    /** Attribution rollups (ADR 0078) as the sink writes them: per user, project, dimension, value and day/month. */
    record Rollup(String user, String tenant, String project, String dimension, String value, LocalDate day, long count,
                  long prompt, long completion, long cost) {}

    private List<Rollup> writeRollups() {
        List<Rollup> out = new ArrayList<>();
        Random random = new Random(78);
        for (String user : List.of(tenantUsers.get(0), tenantUsers.get(1), otherUser)) {
            String ten = user.equals(otherUser) ? otherTenant : tenant;
            for (int d = 0; d < 3; d++) {
                LocalDate day = LocalDate.ofInstant(START, ZoneOffset.UTC).plusDays(d);
                for (String project : List.of("", "search")) {
                    long acme = 1 + random.nextInt(1_000_000_000), none = 1 + random.nextInt(1_000_000_000);
                    int n1 = 1 + random.nextInt(9), n2 = 1 + random.nextInt(9);
                    // One project's day: customer=acme and (none) add up to its (all) row, and so does feature=chat.
                    out.add(new Rollup(user, ten, project, "(all)", "(all)", day, n1 + n2, 10L * (n1 + n2), 5L * (n1 + n2), acme + none));
                    out.add(new Rollup(user, ten, project, "customer", "acme", day, n1, 10L * n1, 5L * n1, acme));
                    out.add(new Rollup(user, ten, project, "customer", "(none)", day, n2, 10L * n2, 5L * n2, none));
                    out.add(new Rollup(user, ten, project, "feature", "chat", day, n1 + n2, 10L * (n1 + n2), 5L * (n1 + n2), acme + none));
                }
            }
        }
        Map<List<Object>, long[]> monthly = new java.util.LinkedHashMap<>();
        for (Rollup r : out) {
            bed.db.execute("INSERT INTO usage_rollup_daily (user_id, project, dimension, value, day, tenant_id, event_count,"
                    + " prompt_tokens, completion_tokens, cost_nano_usd, revision) VALUES (?,?,?,?,?,?,?,?,?,?,1)", r.user(),
                    r.project(), r.dimension(), r.value(), r.day(), r.tenant(), r.count(), r.prompt(), r.completion(), r.cost());
            long[] m = monthly.computeIfAbsent(List.of(r.user(), r.tenant(), r.project(), r.dimension(), r.value(),
                    r.day().withDayOfMonth(1)), k -> new long[4]);
            m[0] += r.count();
            m[1] += r.prompt();
            m[2] += r.completion();
            m[3] += r.cost();
        }
        monthly.forEach((k, m) -> bed.db.execute("INSERT INTO usage_rollup_monthly (user_id, tenant_id, project, dimension,"
                + " value, billing_month, event_count, prompt_tokens, completion_tokens, cost_nano_usd, revision)"
                + " VALUES (?,?,?,?,?,?,?,?,?,?,1)", k.get(0), k.get(1), k.get(2), k.get(3), k.get(4), k.get(5), m[0], m[1], m[2], m[3]));
        return out;
    }

    @Test
    void projectAndLabelDimensionsComeFromTheRollupsEachCallCountedOnce() throws Exception {
        List<Rollup> rollups = writeRollups();
        // group_by=project_id: each day's (all) rows per project; the key without a project shows as (none).
        Map<String, Long> byProject = new HashMap<>();
        rollups.stream().filter(r -> r.tenant().equals(tenant) && r.dimension().equals("(all)")).forEach(r -> byProject.merge(
                r.day().atStartOfDay(ZoneOffset.UTC).toEpochSecond() + "|" + (r.project().isEmpty() ? "(none)" : r.project()),
                r.cost(), Long::sum));
        JsonNode n = ok(admin, "/admin/usage?" + range() + "&bucket_width=1d&tenant_id=" + q(tenant) + "&group_by=project_id", ADMIN);
        Map<String, Long> got = new HashMap<>();
        for (JsonNode b : n.get("data")) {
            for (JsonNode r : b.get("results")) {
                assertThat(got.put(b.get("start_time").asLong() + "|" + r.get("project_id").asText(), r.get("cost_nano_usd").asLong())).isNull();
                assertThat(r.get("input_cached_tokens").isNull()).as("the rollups keep no cached tokens: null, not 0").isTrue();
                assertThat(r.get("reasoning_tokens").isNull()).isTrue();
                assertThat(r.has("labels")).isFalse();
            }
        }
        assertThat(got).isEqualTo(byProject).hasSize(6);

        // group_by=customer (a dimension) summed over projects equals the per-project totals: nothing counted twice
        // although every call appears under (all), customer and feature.
        Map<String, Long> byCustomer = new HashMap<>();
        rollups.stream().filter(r -> r.tenant().equals(tenant) && r.dimension().equals("customer"))
                .forEach(r -> byCustomer.merge(r.value(), r.cost(), Long::sum));
        JsonNode c = ok(admin, "/admin/usage?" + range() + "&bucket_width=1mo&tenant_id=" + q(tenant) + "&group_by=customer", ADMIN);
        Map<String, Long> gotCustomer = new HashMap<>();
        long events = 0;
        for (JsonNode b : c.get("data")) {
            for (JsonNode r : b.get("results")) {
                gotCustomer.merge(r.at("/labels/customer").asText(), r.get("cost_nano_usd").asLong(), Long::sum);
                events += r.get("num_model_requests").asLong();
            }
        }
        assertThat(gotCustomer).isEqualTo(byCustomer);
        assertThat(gotCustomer.values().stream().mapToLong(Long::longValue).sum())
                .isEqualTo(byProject.values().stream().mapToLong(Long::longValue).sum());
        assertThat(events).isEqualTo(rollups.stream().filter(r -> r.tenant().equals(tenant) && r.dimension().equals("(all)"))
                .mapToLong(Rollup::count).sum());

        // The service key reads its own user's projects, per value, as CSV with the label columns.
        HttpResponse<String> csv = bed.client.send(HttpRequest.newBuilder(URI.create(bed.baseUrl() + "/v1/usage?" + range()
                        + "&bucket_width=1d&group_by=project_id,feature")).header("Authorization", "Bearer " + a1.key())
                .header("Accept", "text/csv").GET().build(), HttpResponse.BodyHandlers.ofString());
        assertThat(csv.statusCode()).as(csv.body()).isEqualTo(200);
        CsvTable t = CsvTable.parse(csv.body());
        List<String> h = t.columns();
        long own = 0;
        for (List<String> row : t.rows()) {
            assertThat(row.get(h.indexOf("label_key"))).isEqualTo("feature");
            assertThat(row.get(h.indexOf("label_value"))).isEqualTo("chat");
            assertThat(row.get(h.indexOf("input_cached_tokens"))).isEmpty();
            own += Long.parseLong(row.get(h.indexOf("cost_nano_usd")));
        }
        assertThat(t.rows()).hasSize(6);
        assertThat(own).isEqualTo(rollups.stream().filter(r -> r.user().equals(a1.userId()) && r.dimension().equals("feature"))
                .mapToLong(Rollup::cost).sum());
    }

    @Test
    void theOpenHourComesFromTheQuotaEngineMarkedRealtime() throws Exception {
        EdgeTestBed.User u = bed.newUser(2_000_000_000L);
        HttpResponse<String> call = bed.post("/v1/chat/completions", u.key(), EdgeTestBed.chat("gpt-4o-mini", "hello"));
        assertThat(call.statusCode()).isEqualTo(200);
        long cost = bed.awaitEvents(u.userId(), 1, Duration.ofSeconds(30)).get(0).getCostNanoUsd();
        assertThat(cost).isPositive();
        await("the call is settled in Redis").atMost(Duration.ofSeconds(30))
                .untilAsserted(() -> assertThat(bed.quota.usedNanoUsd(u.userId())).isEqualTo(cost));
        long from = Instant.now().truncatedTo(ChronoUnit.HOURS).minus(2, ChronoUnit.HOURS).getEpochSecond();
        JsonNode n = ok(pub, "/v1/usage?start_time=" + from + "&bucket_width=1h&group_by=key_source", u.key());
        JsonNode last = n.at("/data/" + (n.get("data").size() - 1));
        assertThat(n.get("data").size()).isEqualTo(3);
        assertThat(last.get("results").size()).as(n.toString()).isEqualTo(1);
        assertThat(last.at("/results/0/source").asText()).isEqualTo("realtime");
        assertThat(last.at("/results/0/key_source").asText()).isEqualTo("SERVICE_CREDIT");
        assertThat(last.at("/results/0/cost_nano_usd").asLong()).isEqualTo(cost);

        // Once the sink has billed it (here: the row it would write), realtime is what Redis holds beyond it: nothing.
        Instant hour = Instant.ofEpochSecond(last.get("start_time").asLong());
        var t = USAGE_TOTAL_MONTHLY;
        bed.db.insertInto(t).set(t.USER_ID, u.userId()).set(t.TENANT_ID, u.tenantId()).set(t.MODEL, "gpt-4o-mini")
                .set(t.KEY_SOURCE, "SERVICE_CREDIT").set(t.BILLING_MONTH, LocalDate.ofInstant(hour, ZoneOffset.UTC).withDayOfMonth(1))
                .set(t.EVENT_COUNT, 1L).set(t.SUCCEEDED_COUNT, 1L).set(t.FAILED_COUNT, 0L).set(t.CANCELLED_COUNT, 0L)
                .set(t.REJECTED_COUNT, 0L).set(t.PROMPT_TOKENS, 0L).set(t.CACHED_PROMPT_TOKENS, 0L)
                .set(t.COMPLETION_TOKENS, 0L).set(t.REASONING_TOKENS, 0L).set(t.COST_NANO_USD, cost).set(t.REVISION, 1L).execute();
        var h = USAGE_TOTAL_HOURLY;
        bed.db.insertInto(h).set(h.USER_ID, u.userId()).set(h.TENANT_ID, u.tenantId()).set(h.MODEL, "gpt-4o-mini")
                .set(h.KEY_SOURCE, "SERVICE_CREDIT").set(h.HOUR_START, OffsetDateTime.ofInstant(hour, ZoneOffset.UTC))
                .set(h.EVENT_COUNT, 1L).set(h.SUCCEEDED_COUNT, 1L).set(h.FAILED_COUNT, 0L).set(h.CANCELLED_COUNT, 0L)
                .set(h.REJECTED_COUNT, 0L).set(h.PROMPT_TOKENS, 0L).set(h.CACHED_PROMPT_TOKENS, 0L)
                .set(h.COMPLETION_TOKENS, 0L).set(h.REASONING_TOKENS, 0L).set(h.COST_NANO_USD, cost).set(h.REVISION, 1L).execute();
        JsonNode billed = ok(pub, "/v1/usage?start_time=" + from + "&bucket_width=1h&group_by=key_source", u.key());
        JsonNode results = billed.at("/data/" + (billed.get("data").size() - 1) + "/results");
        assertThat(results.size()).as(billed.toString()).isEqualTo(1);
        assertThat(results.at("/0/source").asText()).isEqualTo("billed");
        assertThat(results.at("/0/cost_nano_usd").asLong()).isEqualTo(cost);
    }
}
