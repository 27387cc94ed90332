package dev.tokenmeter.edge.usage;

import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Issue 17's usage API target — a program, not a test: the p99 of {@code GET /admin/usage} for a month of hourly
 * buckets of one tenant with {@code users} users (one page: bucket_width=1h, limit=744, group_by=model) against the
 * p99 of the SQL that page runs ({@link UsageSql}, the same text and binds) issued straight to Postgres over JDBC from
 * this JVM with the edge's role. Each round runs {@code calls} sequential API calls and {@code calls} sequential
 * statements, the order alternating by round; prints every round and the median of the per-round ratios.
 * Data: {@code users} users x 720 hours (30 days) x 2 models, each (user, hour) present with probability
 * {@code density}, written with one INSERT ... SELECT generate_series.
 * {@code bin/benchmark edge-service dev.tokenmeter.edge.usage.UsageApiBenchmark [rounds] [calls] [users] [density]}
 */
public final class UsageApiBenchmark {

    private UsageApiBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int calls = args.length > 1 ? Integer.parseInt(args[1]) : 200;
        int users = args.length > 2 ? Integer.parseInt(args[2]) : 1000;
        double density = args.length > 3 ? Double.parseDouble(args[3]) : 0.25;
        String admin = "admin-" + UUID.randomUUID();
        String tenant = "bench-tenant";
        Instant start = Instant.parse("2026-11-01T00:00:00Z");
        Instant end = start.plus(30, ChronoUnit.DAYS);
        try (Engines engines = Engines.create(Backend.EMBEDDED);
             FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("ADMIN_TOKEN", admin))) {
            long t0 = System.nanoTime();
            int rows = bed.db.execute("""
                    INSERT INTO usage_total_hourly (user_id, model, key_source, hour_start, tenant_id, event_count,
                        succeeded_count, failed_count, cancelled_count, rejected_count, prompt_tokens, cached_prompt_tokens,
                        completion_tokens, reasoning_tokens, cost_nano_usd, revision, is_final)
                    SELECT 'bench-u' || u, m, 'SERVICE_CREDIT', ?::timestamptz + make_interval(hours => h), ?, 3, 3, 0, 0, 0,
                        300 + u, 0, 90 + h, 0, 1000 * u + h, 1, true
                    FROM generate_series(1, ?) u, generate_series(0, 719) h, unnest(array['gpt-4o-mini', 'gpt-4o']) m
                    WHERE random() < ?""", start.toString(), tenant, users, density);
            // Other tenants' rows too, so the tenant's range is found through the index, not by reading everything.
            rows += bed.db.execute("""
                    INSERT INTO usage_total_hourly (user_id, model, key_source, hour_start, tenant_id, event_count,
                        succeeded_count, failed_count, cancelled_count, rejected_count, prompt_tokens, cached_prompt_tokens,
                        completion_tokens, reasoning_tokens, cost_nano_usd, revision, is_final)
                    SELECT 'other-u' || u, 'gpt-4o-mini', 'SERVICE_CREDIT', ?::timestamptz + make_interval(hours => h),
                        'other-' || (u % 10), 1, 1, 0, 0, 0, 10, 0, 10, 0, 10, 1, true
                    FROM generate_series(1, ?) u, generate_series(0, 719) h WHERE random() < ?""",
                    start.toString(), users, density);
            bed.db.execute("ANALYZE usage_total_hourly");
            System.out.printf("%d rows written in %.1f s; tenant %s: %d users x 720 h x 2 models at density %.2f%n",
                    rows, (System.nanoTime() - t0) / 1e9, tenant, users, density);

            URI uri = URI.create(bed.adminUrl() + "/admin/usage?bucket_width=1h&limit=744&group_by=model&tenant_id=" + tenant
                    + "&start_time=" + start.getEpochSecond() + "&end_time=" + end.getEpochSecond());
            HttpRequest request = HttpRequest.newBuilder(uri).header("Authorization", "Bearer " + admin).GET().build();
            UsageSql sql = UsageSql.forBenchmark("1h", start, end, List.of("model"), null, tenant);
            System.out.println("SQL: " + sql.sql() + "  binds " + sql.binds());
            HttpResponse<String> first = bed.client.send(request, HttpResponse.BodyHandlers.ofString());
            if (first.statusCode() != 200 || first.body().contains("\"has_more\":true")) {
                throw new IllegalStateException("the month must be one page: " + first.statusCode() + " "
                        + first.body().substring(0, Math.min(300, first.body().length())));
            }
            System.out.printf("answer: %d bytes%n", first.body().length());
            List<Double> ratios = new ArrayList<>();
            try (Connection c = bed.dataSource.getConnection()) {
                for (int i = 0; i < 20; i++) { // warm both paths
                    bed.client.send(request, HttpResponse.BodyHandlers.discarding());
                    direct(c, sql);
                }
                for (int round = 1; round <= rounds; round++) {
                    long[] api = new long[calls];
                    long[] db = new long[calls];
                    boolean apiFirst = round % 2 == 1;
                    for (int pass = 0; pass < 2; pass++) {
                        if ((pass == 0) == apiFirst) {
                            for (int i = 0; i < calls; i++) {
                                long s = System.nanoTime();
                                HttpResponse<String> r = bed.client.send(request, HttpResponse.BodyHandlers.ofString());
                                api[i] = System.nanoTime() - s;
                                if (r.statusCode() != 200) {
                                    throw new IllegalStateException(r.statusCode() + " " + r.body());
                                }
                            }
                        } else {
                            for (int i = 0; i < calls; i++) {
                                long s = System.nanoTime();
                                direct(c, sql);
                                db[i] = System.nanoTime() - s;
                            }
                        }
                    }
                    double apiP99 = p(api, 0.99);
                    double dbP99 = p(db, 0.99);
                    ratios.add(apiP99 / dbP99);
                    System.out.printf("round %d (%s first): API p50 %.2f ms p99 %.2f ms | SQL p50 %.2f ms p99 %.2f ms | p99 ratio %.2f%n",
                            round, apiFirst ? "API" : "SQL", p(api, 0.5), apiP99, p(db, 0.5), dbP99, apiP99 / dbP99);
                }
            }
            List<Double> sorted = ratios.stream().sorted().toList();
            System.out.printf("median of the per-round p99 ratios: %.2f (target <= 2.00)%n", sorted.get(sorted.size() / 2));
        }
    }

    /** Runs the statement and reads every row, as the API does. */
    private static long direct(Connection c, UsageSql sql) throws Exception {
        long sum = 0;
        try (PreparedStatement ps = c.prepareStatement(sql.sql())) {
            for (int i = 0; i < sql.binds().size(); i++) {
                ps.setObject(i + 1, sql.binds().get(i));
            }
            try (ResultSet rs = ps.executeQuery()) {
                int columns = rs.getMetaData().getColumnCount();
                while (rs.next()) {
                    sum += rs.getLong(1) + rs.getString(2).length() + rs.getLong(columns);
                }
            }
        }
        return sum;
    }

    private static double p(long[] nanos, double q) {
        long[] s = nanos.clone();
        Arrays.sort(s);
        return s[Math.min(s.length - 1, (int) Math.ceil(q * s.length) - 1)] / 1e6;
    }
}
