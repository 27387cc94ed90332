package dev.tokenmeter.local.load;

import dev.tokenmeter.local.LoadTarget;
import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import org.apache.kafka.clients.admin.Admin;
import org.awaitility.core.ConditionTimeoutException;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.awaitility.Awaitility.await;

/**
 * The load program of issue 20 (a benchmark main, not a test): starts the local stack as the end-to-end tests do
 * (embedded engines, fake OpenAI upstream, edge, aggregator and sink each from its shipped jar), seeds the demo's
 * users (two of them run out of credit or hit their rate limit, so designed 429s happen), drives chat calls through
 * the edge and samples the stack every {@code -Dload.sampleSeconds} into {@code <out>/samples.csv}, drawn as
 * {@code <out>/charts.html}. Then it waits for the consumers' lag to drain, runs the end-to-end tests' exact checks
 * and prints a summary; the exit status is 1 when a check failed or an answer other than 2xx/429 came back.
 *
 * <pre>bin/benchmark local-stack dev.tokenmeter.local.load.LoadProgram steady --rate 10 --minutes 2
 * bin/benchmark local-stack dev.tokenmeter.local.load.LoadProgram max --seconds 30 --concurrency 16</pre>
 *
 * {@code steady} is open loop: request i is due at i/rate seconds, sent on its own virtual thread whatever the
 * earlier ones are doing, and its latency runs from that due time (no coordinated omission). {@code max} is closed
 * loop (each of C callers sends its next request when the previous one is answered) and prints the edge's maximum
 * throughput; the soak's rate is half of it.
 */
public final class LoadProgram {

    private static final List<String> CHAT_MODELS = List.of("gpt-4o-mini", "gpt-4.1-mini", "gpt-5-nano", "gpt-4o", "o4-mini");
    private static final List<String> TOPICS = List.of("invoices", "a haiku about Kafka", "SQL window functions",
            "GCRA", "a recipe for bread", "exactly-once semantics");
    private static final int STREAMING_PERCENT = 35;
    private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration LAG_DRAIN_TIMEOUT = Duration.ofMinutes(3);
    private static final Duration CHECK_TIMEOUT = Duration.ofMinutes(4);
    /** A rise smaller than this share of a series' level is not a trend (Flatness). */
    private static final double FLATNESS_FLOOR = 0.02;
    private static final Duration FLATNESS_WINDOW = Duration.ofMinutes(20);

    private final LoadArgs args;
    private final LoadTarget target;
    private final HttpClient http;
    private final LoadTally tally = new LoadTally();
    private final Set<String> eventIds = ConcurrentHashMap.newKeySet();
    private final Random random = new Random(20);

    private LoadProgram(LoadArgs args, LoadTarget target) {
        this.args = args;
        this.target = target;
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).version(HttpClient.Version.HTTP_1_1)
                .executor(Executors.newVirtualThreadPerTaskExecutor()).build();
    }

    public static void main(String[] argv) throws Exception {
        String stamp = LocalDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
        LoadArgs args;
        try {
            args = LoadArgs.parse(argv, System.getProperty("load.sampleSeconds"),
                    Path.of("local-stack", "target", "load", (argv.length > 0 ? argv[0] : "run") + "-" + stamp));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        Files.createDirectories(args.out());
        boolean passed;
        try (Engines engines = Engines.create(Backend.EMBEDDED);
             FakeOpenAi upstream = FakeOpenAi.start();
             LoadTarget target = LoadTarget.start(engines, upstream, args.out().resolve("stack"), System.out, "")) {
            passed = new LoadProgram(args, target).run(engines);
        }
        System.exit(passed ? 0 : 1);
    }

    private boolean run(Engines engines) throws Exception {
        Path csv = args.out().resolve("samples.csv");
        Files.deleteIfExists(csv);
        long sent;
        long loadNanos;
        Duration drainTook = null;
        boolean lagDrained;
        LoadTarget.Checks checks;
        try (Admin admin = Admin.create(target.kafka());
             RedisClient redisClient = RedisClient.create(engines.redis().uri());
             StatefulRedisConnection<String, String> redis = redisClient.connect();
             Connection db = DriverManager.getConnection(target.jdbcUrl(), target.dbUser(), target.dbPassword());
             Sampler sampler = sampler(csv, admin, redis, db)) {
            sampler.start();
            long t0 = System.nanoTime();
            sent = args.scenario() == LoadArgs.Scenario.STEADY ? openLoop() : closedLoop();
            loadNanos = System.nanoTime() - t0;
            System.out.printf(Locale.ROOT, "%nload done: %d requests in %.1f s%n", sent, loadNanos / 1e9);
            long drainStart = System.nanoTime();
            try {
                await("consumer lag of aggregator and sink back to 0").atMost(LAG_DRAIN_TIMEOUT)
                        .pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(500))
                        .until(() -> totalLag(admin) == 0);
                drainTook = Duration.ofNanos(System.nanoTime() - drainStart);
                lagDrained = true;
            } catch (ConditionTimeoutException e) {
                System.out.println(e.getMessage());
                lagDrained = false;
            }
            checks = target.check(sent, Set.copyOf(eventIds), CHECK_TIMEOUT, System.out);
            sampler.sampleOnce(); // the drained state, as the last row
        }
        CsvTable table = CsvTable.read(csv);
        Charts.write(table, "tokenmeter load: " + args.scenario().name().toLowerCase(Locale.ROOT)
                + " (" + sent + " requests)", args.out().resolve("charts.html"));
        LoadTally.Snapshot total = tally.total();
        LoadVerdict verdict = LoadVerdict.of(total, sent, lagDrained, checks.ok());
        printSummary(sent, loadNanos, total, drainTook, checks, table, verdict);
        return verdict.passed();
    }

    /** Open loop: request i due at start + i/rate, each on its own virtual thread; returns how many were sent. */
    private long openLoop() throws InterruptedException {
        OpenLoopSchedule schedule = new OpenLoopSchedule(args.ratePerSecond(), args.duration());
        System.out.printf(Locale.ROOT, "steady: %d requests at %d/s over %s (open loop)%n", schedule.count(),
                args.ratePerSecond(), args.duration());
        long start = System.nanoTime();
        try (ExecutorService calls = Executors.newVirtualThreadPerTaskExecutor()) {
            for (long i = 0; i < schedule.count(); i++) {
                long due = start + schedule.dueOffsetNanos(i);
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    TimeUnit.NANOSECONDS.sleep(wait);
                }
                HttpRequest request = nextRequest();
                calls.submit(() -> call(request, due));
            }
        } // waits for every call: each has a timeout
        return schedule.count();
    }

    /** Closed loop: C callers, each sending its next request once the previous is answered, until the time is up. */
    private long closedLoop() throws InterruptedException {
        // users with limits no run reaches: a fast 429 would count as capacity the edge does not have for real calls
        List<LoadTarget.Caller> served = target.unlimitedCallers();
        System.out.printf(Locale.ROOT, "max: %d callers back to back for %s (closed loop) as %s%n", args.concurrency(),
                args.duration(), served.stream().map(LoadTarget.Caller::userId).toList());
        AtomicLong sent = new AtomicLong();
        long end = System.nanoTime() + args.duration().toNanos();
        try (ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int c = 0; c < args.concurrency(); c++) {
                long seed = random.nextLong();
                callers.submit(() -> {
                    Random own = new Random(seed);
                    while (System.nanoTime() < end) {
                        HttpRequest request = request(served, own);
                        sent.incrementAndGet();
                        call(request, System.nanoTime());
                    }
                });
            }
        }
        double seconds = args.duration().toNanos() / 1e9;
        LoadTally.Snapshot total = tally.total();
        double served2xx = total.count(LoadTally.StatusClass.S2XX) / seconds;
        System.out.printf(Locale.ROOT, "maximum throughput: %.1f answers/s, %.1f/s 2xx; the soak's rate would be %.0f/s%n",
                total.answers() / seconds, served2xx, served2xx / 2);
        return sent.get();
    }

    private void call(HttpRequest request, long dueNanos) {
        int status;
        try {
            HttpResponse<InputStream> response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream body = response.body()) {
                body.transferTo(OutputStream.nullOutputStream());
            }
            status = response.statusCode();
            response.headers().firstValue("x-tokenmeter-event-id").ifPresent(eventIds::add);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            status = -1;
        } catch (Exception e) {
            status = -1;
        }
        tally.record(status, System.nanoTime() - dueNanos);
    }

    private HttpRequest nextRequest() {
        return request(target.callers(), random);
    }

    private HttpRequest request(List<LoadTarget.Caller> callers, Random r) {
        LoadTarget.Caller caller = callers.get(r.nextInt(callers.size()));
        boolean stream = r.nextInt(100) < STREAMING_PERCENT;
        String body = "{\"model\":\"" + CHAT_MODELS.get(r.nextInt(CHAT_MODELS.size())) + "\",\"max_tokens\":"
                + (16 + r.nextInt(48)) + "," + (stream ? "\"stream\":true," : "")
                + "\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about " + TOPICS.get(r.nextInt(TOPICS.size()))
                + ".\"}]}";
        return HttpRequest.newBuilder(target.edgeUrl().resolve("/v1/chat/completions"))
                .timeout(REQUEST_TIMEOUT)
                .header("Authorization", "Bearer " + caller.apiKey())
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
    }

    private Sampler sampler(Path csv, Admin admin, StatefulRedisConnection<String, String> redis, Connection db) {
        Sampler.Builder b = Sampler.builder(csv, args.sampleInterval());
        AtomicLong lastTake = new AtomicLong(System.nanoTime());
        b.source(LoadTally.columns(), row -> {
            long now = System.nanoTime();
            LoadTally.fill(row, tally.takeInterval(), Math.max(1e-3, (now - lastTake.getAndSet(now)) / 1e9));
        });
        Map<String, String> groups = target.consumerGroups();
        for (String group : List.of("aggregator", "sink")) {
            b.source(List.of("lag_" + group), row -> row.put("lag_" + group, Probes.totalConsumerLag(admin, groups.get(group))));
        }
        Path spool = target.spoolDir();
        b.source(List.of("spool_bytes"), row -> row.put("spool_bytes", Probes.directoryBytes(spool)));
        target.pids().forEach((name, pid) -> {
            b.source(List.of("rss_mib_" + name), row -> row.put("rss_mib_" + name,
                    String.format(Locale.ROOT, "%.1f", Probes.rssBytes(pid) / 1048576.0)));
            b.source(List.of("fds_" + name), row -> row.put("fds_" + name, Probes.openFileDescriptors(pid)));
        });
        b.source(List.of("redis_used_bytes"), row -> row.put("redis_used_bytes", Probes.redisMemory(redis.sync()).usedBytes()));
        Map<String, String> users = target.databaseUsers();
        List<String> pgColumns = users.keySet().stream().sorted().map(s -> "pg_connections_" + s).toList();
        b.source(pgColumns, row -> {
            Map<String, Long> byUserApp = Probes.postgresConnections(db);
            users.forEach((service, user) -> row.put("pg_connections_" + service, byUserApp.entrySet().stream()
                    .filter(e -> e.getKey().startsWith(user + "/")).mapToLong(Map.Entry::getValue).sum()));
        });
        return b.build();
    }

    private long totalLag(Admin admin) {
        long lag = 0;
        for (String group : target.consumerGroups().values()) {
            lag += Probes.totalConsumerLag(admin, group);
        }
        return lag;
    }

    private void printSummary(long sent, long loadNanos, LoadTally.Snapshot total, Duration drainTook,
                              LoadTarget.Checks checks, CsvTable table, LoadVerdict verdict) {
        System.out.println();
        System.out.println("== summary: " + args.scenario().name().toLowerCase(Locale.ROOT) + " ==");
        System.out.printf(Locale.ROOT, "requests     %d in %.1f s (%.1f/s)%n", sent, loadNanos / 1e9, sent / (loadNanos / 1e9));
        StringBuilder statuses = new StringBuilder("statuses    ");
        for (LoadTally.StatusClass c : LoadTally.StatusClass.values()) {
            statuses.append(' ').append(c.column()).append('=').append(total.count(c));
        }
        System.out.println(statuses);
        System.out.printf(Locale.ROOT, "latency      p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (from each request's due time)%n",
                total.p50Ms(), total.p90Ms(), total.p99Ms(), total.maxMs());
        System.out.println("lag drain    " + (drainTook == null ? "NOT drained within " + LAG_DRAIN_TIMEOUT
                : String.format(Locale.ROOT, "%.1f s after the load stopped (polled every 0.5 s)", drainTook.toMillis() / 1000.0)));
        System.out.println("exact checks " + (checks.ok() ? "PASS" : "FAIL") + (checks.drained() ? "" : " (ledger not drained)"));
        checks.lines().forEach(l -> System.out.println("  " + l));
        // the soak's 20 minutes, or the load's own length when it is shorter (a short run gets a verdict too)
        Duration window = args.duration().compareTo(FLATNESS_WINDOW) < 0 ? args.duration() : FLATNESS_WINDOW;
        System.out.println("flatness over the last " + window.toSeconds() + " s of samples (Flatness, floor "
                + FLATNESS_FLOOR + " of the level); reported, not failed on, in this version:");
        double[] t = table.numbers(Charts.TIME_COLUMN);
        for (String column : table.columns()) {
            if (column.startsWith("rss_") || column.startsWith("fds_") || column.startsWith("pg_connections_")
                    || column.equals("redis_used_bytes")) {
                System.out.println("  " + column + ": " + Flatness.judge(t, table.numbers(column), window, FLATNESS_FLOOR));
            }
        }
        System.out.println("samples      " + args.out().resolve("samples.csv").toAbsolutePath());
        System.out.println("charts       " + args.out().resolve("charts.html").toAbsolutePath());
        System.out.println("result       " + (verdict.passed() ? "PASS" : "FAIL: " + String.join("; ", verdict.failures())));
    }
}
