package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.csv.CsvTable;
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
 * throughput. {@code soak} measures that maximum first, then runs open loop at half of it for 30 minutes;
 * {@code burst} measures it, then 5 % of it (--base-percent) for 5 minutes, 20× that for 2, and the base again for 5. Their pass rules are
 * {@link LoadRules}'; every scenario's samples are checked against {@link MemoryBudget}.
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
    /** The soak's latency windows: its first and its last 10 minutes (half the soak each when it is shorter). */
    private static final Duration LATENCY_WINDOW = Duration.ofMinutes(10);
    /** Share of soak and burst calls made as the demo users (the designed 429s); the rest as the unlimited users. */
    private static final int DEMO_PERCENT = 20;
    /** How often the heap after a full GC is probed (each probe is a full collection in every service). */
    private static final Duration HEAP_PROBE_INTERVAL = Duration.ofSeconds(30);
    /** The burst's base rate is this share of the measured maximum, its burst this multiple of the base. */
    private static final int BURST_FACTOR = 20;

    /** A stretch of open-loop load at one rate, named for the samples' {@code phase} column. */
    record Segment(String phase, int ratePerSecond, Duration duration) {
    }

    private final LoadArgs args;
    private final LoadTarget target;
    private final HttpClient http;
    private final LoadTally tally = new LoadTally();
    private final Set<String> eventIds = ConcurrentHashMap.newKeySet();
    private final Random random = new Random(20);
    private final AtomicLong retryAfterMissing = new AtomicLong();
    private final MemoryBudget budget = MemoryBudget.localStack();
    /** Where each phase ran, in the samples' seconds: name → {start, end}. */
    private final Map<String, double[]> phases = new ConcurrentHashMap<>();
    private volatile String phase = "start";
    private long samplerStartNanos;
    private int loadRate;
    private final LoadTally firstWindow = new LoadTally();
    private final LoadTally lastWindow = new LoadTally();

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
             LoadTarget target = LoadTarget.start(engines, upstream, args.out().resolve("stack"), System.out, "",
                     args.edgeMaxInFlight())) {
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
            samplerStartNanos = System.nanoTime();
            sampler.start();
            long t0 = System.nanoTime();
            sent = switch (args.scenario()) {
                case STEADY -> openLoop(List.of(new Segment("steady", args.ratePerSecond(), args.duration())), false);
                case MAX -> closedLoop(args.duration());
                case SOAK -> soak();
                case BURST -> burst();
            };
            loadNanos = System.nanoTime() - t0;
            phase = "drain";
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
        List<String> ruleFailures = new ArrayList<>();
        List<String> budgetBreaches = budget.violations(table);
        if (!budgetBreaches.isEmpty()) {
            ruleFailures.add(budgetBreaches.size() + " samples over the memory/connection budget, first: " + budgetBreaches.getFirst());
        }
        if (retryAfterMissing.get() > 0) {
            ruleFailures.add(retryAfterMissing.get() + " retryable answers 429/503 without a Retry-After of whole seconds");
        }
        ruleFailures.addAll(switch (args.scenario()) {
            case SOAK -> soakRules(table);
            case BURST -> burstRules(table);
            default -> List.of();
        });
        LoadVerdict verdict = LoadVerdict.of(total, sent, lagDrained, checks.ok(), args.scenario() == LoadArgs.Scenario.BURST,
                ruleFailures);
        printSummary(sent, loadNanos, total, drainTook, checks, table, verdict);
        return verdict.passed();
    }

    /** The closed-loop maximum (2xx/s) over {@code duration}, as phase "max". */
    private double measureMax(Duration duration) throws InterruptedException {
        long start = System.nanoTime();
        phase = "max";
        closedLoop(duration);
        mark("max", start, System.nanoTime());
        double max = tally.total().count(LoadTally.StatusClass.S2XX) / (duration.toNanos() / 1e9);
        if (max < 1) {
            throw new IllegalStateException("the closed-loop maximum was " + max + " 2xx/s: nothing to derive a rate from");
        }
        return max;
    }

    /** Soak: the maximum, then half of it (or --rate) open loop for --minutes. */
    private long soak() throws InterruptedException {
        long before = tally.total().answers();
        int rate = rateOrShareOfMax(0.5, "soak rate: half of the maximum");
        long measuring = tally.total().answers() - before;
        return measuring + openLoop(List.of(new Segment("soak", rate, args.duration())), true);
    }

    /** Burst: the maximum, then --base-percent (5) % of it (or --rate), 20× that, and the base again. */
    private long burst() throws InterruptedException {
        long before = tally.total().answers();
        int base = rateOrShareOfMax(args.basePercent() / 100, String.format(Locale.ROOT,
                "burst base: %s %% of the maximum (burst %dx that)", args.basePercent(), BURST_FACTOR));
        long measuring = tally.total().answers() - before;
        return measuring + openLoop(List.of(new Segment("base", base, args.duration()),
                new Segment("burst", base * BURST_FACTOR, args.burstDuration()),
                new Segment("after", base, args.afterDuration())), true);
    }

    /**
     * The load's base rate, also kept as {@code loadRate}: --rate when given, else {@code share} of the closed-loop
     * maximum measured first (at least 1/s).
     */
    private int rateOrShareOfMax(double share, String what) throws InterruptedException {
        int rate = args.ratePerSecond();
        if (rate == 0) {
            double max = measureMax(args.maxDuration());
            rate = (int) Math.max(1, Math.round(max * share));
            System.out.printf(Locale.ROOT, "%s: %d/s of %.1f 2xx/s%n", what, rate, max);
        }
        loadRate = rate;
        return rate;
    }

    private void mark(String name, long startNanos, long endNanos) {
        phases.put(name, new double[] {(startNanos - samplerStartNanos) / 1e9, (endNanos - samplerStartNanos) / 1e9});
    }

    private List<String> soakRules(CsvTable table) {
        List<String> failures = new ArrayList<>();
        double[] soak = phases.get("soak");
        double[] t = table.numbers(Charts.TIME_COLUMN);
        long nearZero = LoadRules.nearZeroLag(loadRate);
        List<String> lag = LoadRules.lagNotNearZeroMinutes(t, totalLag(table), soak[0], soak[1], nearZero);
        System.out.println("lag near zero (total <= " + nearZero + ") every minute of the soak: "
                + (lag.isEmpty() ? "yes" : lag.size() + " minutes not"));
        lag.forEach(l -> System.out.println("  " + l));
        if (!lag.isEmpty()) {
            failures.add(lag.size() + " minutes of the soak without lag near zero (<= " + nearZero + "), first: " + lag.getFirst());
        }
        Duration window = args.duration().compareTo(FLATNESS_WINDOW) < 0 ? args.duration() : FLATNESS_WINDOW;
        Map<String, Flatness.Verdict> flat = LoadRules.flatness(LoadRules.rowsBetween(table, soak[0], soak[1]), window, FLATNESS_FLOOR);
        System.out.println("flatness over the soak's last " + window.toSeconds() + " s (Flatness, floor " + FLATNESS_FLOOR + " of the level):");
        flat.forEach((c, v) -> System.out.println("  " + c + ": " + v));
        failures.addAll(LoadRules.notFlat(flat).stream().map(f -> "not flat: " + f).toList());
        LoadTally.Snapshot first = firstWindow.total();
        LoadTally.Snapshot last = lastWindow.total();
        System.out.printf(Locale.ROOT, "latency first window p50/p90/p99 %.1f/%.1f/%.1f ms (%d), last window %.1f/%.1f/%.1f ms (%d)%n",
                first.p50Ms(), first.p90Ms(), first.p99Ms(), first.answers(), last.p50Ms(), last.p90Ms(), last.p99Ms(), last.answers());
        failures.addAll(LoadRules.latencyDrift(first, last));
        return failures;
    }

    private List<String> burstRules(CsvTable table) {
        List<String> failures = new ArrayList<>();
        double[] base = phases.get("base");
        double[] burst = phases.get("burst");
        double[] after = phases.get("after");
        double[] t = table.numbers(Charts.TIME_COLUMN);
        long nearZero = LoadRules.nearZeroLag(loadRate);
        double drain = LoadRules.drainSeconds(t, totalLag(table), burst[1], nearZero);
        System.out.printf(Locale.ROOT, "lag near zero (<= %d) again %.0f s after the burst (limit %d s, sampled every %d s)%n",
                nearZero, drain, LoadRules.BURST_DRAIN_LIMIT.toSeconds(), args.sampleInterval().toSeconds());
        if (Double.isNaN(drain) || drain > LoadRules.BURST_DRAIN_LIMIT.toSeconds()) {
            failures.add("lag not near zero within " + LoadRules.BURST_DRAIN_LIMIT.toSeconds() + " s after the burst (" + drain + " s)");
        }
        double beforeFrom = (base[0] + base[1]) / 2;
        double afterFrom = (after[0] + after[1]) / 2;
        for (String column : table.columns()) {
            boolean heap = column.startsWith("heap_after_gc_mib_");
            if (heap || column.equals("redis_used_bytes") || column.startsWith("rss_mib_")) {
                double[] y = table.numbers(column);
                double before = LoadRules.level(t, y, beforeFrom, base[1]);
                double afterLevel = LoadRules.level(t, y, afterFrom, after[1]);
                String notBack = LoadRules.notBack(column, before, afterLevel,
                        column.equals("redis_used_bytes") ? LoadRules.BACK_REDIS_SLACK_BYTES : LoadRules.BACK_HEAP_SLACK_MIB);
                boolean judged = !column.startsWith("rss_mib_"); // RSS: reported (a JVM keeps heap it committed)
                System.out.printf(Locale.ROOT, "  %s before %.6g, after %.6g: %s%s%n", column, before, afterLevel,
                        notBack == null ? "back" : "NOT back", judged ? "" : " (reported only)");
                if (notBack != null && judged) {
                    failures.add("memory not back to its level: " + notBack);
                }
            }
        }
        return failures;
    }

    /** aggregator + sink lag per row (NaN when either is missing). */
    private static double[] totalLag(CsvTable table) {
        double[] a = table.numbers("lag_aggregator");
        double[] b = table.numbers("lag_sink");
        double[] sum = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            sum[i] = a[i] + b[i];
        }
        return sum;
    }

    /**
     * Open loop over consecutive segments: request i of a segment due at its start + i/rate, each on its own virtual
     * thread; the soak's first and last latency windows are tallied apart. Returns how many were sent.
     */
    private long openLoop(List<Segment> segments, boolean mixed) throws InterruptedException {
        long sent = 0;
        Duration total = segments.stream().map(Segment::duration).reduce(Duration.ZERO, Duration::plus);
        long window = Math.min(LATENCY_WINDOW.toNanos(), total.toNanos() / 2);
        long start = System.nanoTime();
        long segmentStart = start;
        try (ExecutorService calls = Executors.newVirtualThreadPerTaskExecutor()) {
            for (Segment segment : segments) {
                OpenLoopSchedule schedule = new OpenLoopSchedule(segment.ratePerSecond(), segment.duration());
                System.out.printf(Locale.ROOT, "%s: %d requests at %d/s over %s (open loop)%n", segment.phase(),
                        schedule.count(), segment.ratePerSecond(), segment.duration());
                phase = segment.phase();
                for (long i = 0; i < schedule.count(); i++) {
                    long due = segmentStart + schedule.dueOffsetNanos(i);
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        TimeUnit.NANOSECONDS.sleep(wait);
                    }
                    HttpRequest request = mixed ? mixedRequest() : nextRequest();
                    long sinceStart = due - start;
                    LoadTally windowTally = sinceStart < window ? firstWindow
                            : sinceStart >= total.toNanos() - window ? lastWindow : null;
                    calls.submit(() -> call(request, due, windowTally));
                }
                long segmentEnd = segmentStart + segment.duration().toNanos();
                mark(segment.phase(), segmentStart, segmentEnd);
                sent += schedule.count();
                segmentStart = segmentEnd;
            }
        } // waits for every call: each has a timeout
        return sent;
    }

    /** Closed loop: C callers, each sending its next request once the previous is answered, until the time is up. */
    private long closedLoop(Duration duration) throws InterruptedException {
        // users with limits no run reaches: a fast 429 would count as capacity the edge does not have for real calls
        List<LoadTarget.Caller> served = target.unlimitedCallers();
        phase = "max";
        System.out.printf(Locale.ROOT, "max: %d callers back to back for %s (closed loop) as %s%n", args.concurrency(),
                duration, served.stream().map(LoadTarget.Caller::userId).toList());
        AtomicLong sent = new AtomicLong();
        long end = System.nanoTime() + duration.toNanos();
        try (ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int c = 0; c < args.concurrency(); c++) {
                long seed = random.nextLong();
                callers.submit(() -> {
                    Random own = new Random(seed);
                    while (System.nanoTime() < end) {
                        HttpRequest request = request(served, own);
                        sent.incrementAndGet();
                        call(request, System.nanoTime(), null);
                    }
                });
            }
        }
        double seconds = duration.toNanos() / 1e9;
        LoadTally.Snapshot total = tally.total();
        double served2xx = total.count(LoadTally.StatusClass.S2XX) / seconds;
        System.out.printf(Locale.ROOT, "maximum throughput: %.1f answers/s, %.1f/s 2xx; the soak's rate would be %.0f/s%n",
                total.answers() / seconds, served2xx, served2xx / 2);
        return sent.get();
    }

    private void call(HttpRequest request, long dueNanos, LoadTally window) {
        int status;
        try {
            HttpResponse<InputStream> response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream body = response.body()) {
                body.transferTo(OutputStream.nullOutputStream());
            }
            status = response.statusCode();
            response.headers().firstValue("x-tokenmeter-event-id").ifPresent(eventIds::add);
            if (!LoadRules.retryAfterOk(status, response.headers().firstValue("retry-after").orElse(null),
                    response.headers().firstValue("x-should-retry").orElse(null))) {
                retryAfterMissing.incrementAndGet();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            status = -1;
        } catch (Exception e) {
            status = -1;
        }
        long latency = System.nanoTime() - dueNanos;
        tally.record(status, latency);
        if (window != null) {
            window.record(status, latency);
        }
    }

    private HttpRequest nextRequest() {
        return request(target.callers(), random);
    }

    /** Soak and burst: {@value #DEMO_PERCENT} % as the demo users (their designed 429s), the rest as the unlimited ones. */
    private HttpRequest mixedRequest() {
        return request(random.nextInt(100) < DEMO_PERCENT ? target.callers() : target.unlimitedCallers(), random);
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
        b.source(List.of("phase"), row -> row.put("phase", phase));
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
        // heap after a forced full GC, once every HEAP_PROBE_INTERVAL (Probes.heapAfterFullGcBytes: a pause per probe)
        long heapEvery = Math.max(1, HEAP_PROBE_INTERVAL.toNanos() / args.sampleInterval().toNanos());
        AtomicLong samples = new AtomicLong();
        List<String> heapColumns = target.pids().keySet().stream().map(n -> "heap_after_gc_mib_" + n).toList();
        b.source(heapColumns, row -> {
            if (samples.getAndIncrement() % heapEvery == 0) {
                target.pids().forEach((name, pid) -> row.put("heap_after_gc_mib_" + name,
                        String.format(Locale.ROOT, "%.1f", Probes.heapAfterFullGcBytes(pid) / 1048576.0)));
            }
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
        if (args.scenario() == LoadArgs.Scenario.STEADY || args.scenario() == LoadArgs.Scenario.MAX) {
            // the load's own length when shorter than 20 minutes (a short run gets a verdict too); the soak judges its own
            Duration window = args.duration().compareTo(FLATNESS_WINDOW) < 0 ? args.duration() : FLATNESS_WINDOW;
            System.out.println("flatness over the last " + window.toSeconds() + " s of samples (Flatness, floor "
                    + FLATNESS_FLOOR + " of the level); reported, not failed on, outside the soak:");
            LoadRules.flatness(table, window, FLATNESS_FLOOR).forEach((c, v) -> System.out.println("  " + c + ": " + v));
        }
        List<String> breaches = budget.violations(table);
        System.out.println("budget       " + (breaches.isEmpty() ? "every sample within " + budget.limitByColumn()
                : breaches.size() + " samples over it"));
        breaches.stream().limit(20).forEach(l -> System.out.println("  " + l));
        System.out.println("samples      " + args.out().resolve("samples.csv").toAbsolutePath());
        System.out.println("charts       " + args.out().resolve("charts.html").toAbsolutePath());
        System.out.println("result       " + (verdict.passed() ? "PASS" : "FAIL: " + String.join("; ", verdict.failures())));
    }
}
