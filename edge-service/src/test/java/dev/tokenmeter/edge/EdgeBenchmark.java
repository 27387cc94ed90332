package dev.tokenmeter.edge;

import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAiMain;
import dev.tokenmeter.testkit.support.FreePorts;
import org.HdrHistogram.Histogram;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.postgresql.ds.PGSimpleDataSource;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;
import static dev.tokenmeter.db.jooq.Tables.API_KEY;
import static dev.tokenmeter.db.jooq.Tables.PLAN;

/**
 * Edge benchmark (issue 4) — not a test. Drives non-streaming chat calls through the edge and, in the same run,
 * directly against the same fake OpenAI upstream, on loopback only, bounded in count and time.
 *
 * <p>Three JVMs, so that none of them bills its CPU to another: this one is only the load generator (a JDK
 * {@code HttpClient}, the same one for both paths); the fake upstream runs {@link FakeOpenAiMain} in its own JVM; the
 * edge runs {@link EdgeApp#main} in its own JVM exactly as deployed (Redis quota engine, spooling Kafka sink,
 * Postgres keys and prices, background sweeper and reconciler). Kafka (its own JVM), Redis and Postgres are the
 * testkit's embedded engines. For every phase the CPU time each of these processes used is read from
 * {@code /proc} and printed per completed call, next to the whole box's busy time (other work on the box shows
 * up as the difference).
 *
 * <p>Phases: warm-up (closed loop, direct 15 s then edge 30 s, twice; {@code -Dbench.warmSeconds}), then, direct
 * then edge in each: sequential (one call at a time: the
 * added cost without queueing); open loop at {@code RATE}/s for {@code SECONDS} s (requests sent on a fixed
 * schedule whatever the answers do; latency from each request's scheduled start, so queueing counts and there is
 * no coordinated omission; failed calls are recorded at their elapsed time and counted); maximum throughput with
 * {@code WORKERS} closed-loop clients for {@code SECONDS} s.
 *
 * <p>Arguments: rate (default 1000), seconds (10), workers (32). {@code BENCH_EDGE_JVM_OPTS} adds JVM options to
 * the edge's JVM (e.g. {@code -XX:StartFlightRecording=filename=edge.jfr,settings=profile}). {@code -Dbench.cpus}
 * pins the processes to CPUs (see {@link Cpu#pin}), so that on a machine with enough cores the edge, its Redis and
 * Kafka can run on cores of their own, as they would on their own hosts, instead of sharing them with the load
 * generator and the fake upstream.
 */
public final class EdgeBenchmark {

    private static final String BODY = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in five words\"}]}";
    private static final int SEQUENTIAL_CALLS = 2000;
    /** The box's cores, counted before {@code bench.cpus} pins this JVM to fewer (which the JVM then reports). */
    private static final int CORES = Runtime.getRuntime().availableProcessors();

    public static void main(String[] args) throws Exception {
        int rate = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        int workers = args.length > 2 ? Integer.parseInt(args[2]) : 32;
        if (rate <= 0 || rate > 20_000 || seconds <= 0 || seconds > 120 || workers <= 0 || workers > 512) {
            throw new IllegalArgumentException("rate 1..20000, seconds 1..120, workers 1..512");
        }
        Path work = Files.createTempDirectory("edge-bench");
        try (Engines engines = Engines.create(Backend.EMBEDDED)) {
            String jdbcUrl = engines.postgres().createMigratedDatabase("edgebench");
            String key = newUserWithKey(engines, jdbcUrl);
            String prefix = Names.unique("edgebench") + ".";
            engines.kafka().createTopic(Topics.withPrefix(prefix, 1).usageEvents().name(), 1);

            int fakePort = FreePorts.pick();
            int edgePort = FreePorts.pick();
            Map<String, String> edgeEnv = new HashMap<>();
            edgeEnv.put("EDGE_PORT", Integer.toString(edgePort));
            int adminPort = FreePorts.pick();
            edgeEnv.put("ADMIN_PORT", Integer.toString(adminPort));
            edgeEnv.put("UPSTREAM_BASE_URL", "http://127.0.0.1:" + fakePort);
            edgeEnv.put("UPSTREAM_REQUEST_TIMEOUT", "10s");
            edgeEnv.put("OPENAI_API_KEY", "sk-service-bench");
            edgeEnv.put("DATABASE_URL", jdbcUrl);
            // As deployed: the edge's own role (ADR 0060), not the schema's owner.
            DatabaseLogin edgeLogin = engines.postgres().login(ServiceLogins.EDGE);
            edgeEnv.put("DATABASE_USER", edgeLogin.user());
            edgeEnv.put("DATABASE_PASSWORD", edgeLogin.password());
            edgeEnv.put("REDIS_URI", engines.redis().uri());
            edgeEnv.putAll(engines.kafka().clientEnv());
            edgeEnv.put("TOPIC_PREFIX", prefix);
            edgeEnv.put("SPOOL_DIR", work.resolve("spool").toString());
            // As the edge tests: the 100 ms production default is too tight for a 2-core box shared by builds.
            edgeEnv.put("QUOTA_REDIS_TIMEOUT_MS", "2000");
            List<String> edgeJvm = new ArrayList<>(List.of("-Xmx1g", "-XX:+ExitOnOutOfMemoryError", "-Xlog:gc:file=" + work.resolve("edge-gc.log")));
            String extra = System.getenv().getOrDefault("BENCH_EDGE_JVM_OPTS", "").strip();
            if (!extra.isEmpty()) {
                edgeJvm.addAll(Arrays.asList(extra.split("\\s+")));
            }
            try (ChildJvm fake = new ChildJvm(FakeOpenAiMain.class.getName(), Map.of("FAKE_OPENAI_PORT", Integer.toString(fakePort)),
                    work.resolve("fake.log"), "-Xmx1g", "-XX:+ExitOnOutOfMemoryError", "-Xlog:gc:file=" + work.resolve("fake-gc.log")).start();
                 ChildJvm edge = new ChildJvm(EdgeApp.class.getName(), edgeEnv, work.resolve("edge.log"),
                         edgeJvm.toArray(String[]::new)).start();
                 HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
                ChildJvm.awaitHttp(URI.create("http://127.0.0.1:" + fakePort + "/v1/models"), status -> true,
                        Duration.ofSeconds(90), fake, List.of());
                ChildJvm.awaitHttp(URI.create("http://127.0.0.1:" + edgePort + "/health/ready"), status -> status == 200,
                        Duration.ofSeconds(90), edge, List.of(fake));

                Cpu cpu = new Cpu(Map.of(
                        "fake", pid -> pid == fake.pid(),
                        "edge", pid -> pid == edge.pid(),
                        "kafka", pid -> cmdline(pid).contains("KafkaBrokerMain") && isOurs(pid),
                        "redis", pid -> cmdline(pid).contains("redis-server") && cmdline(pid).contains(Integer.toString(engines.redis().port())),
                        "postgres", pid -> isPostgresOf(pid, engines.postgres().port())));
                String pinning = cpu.pin(System.getProperty("bench.cpus", ""));
                System.out.printf("cores=%d rate=%d/s seconds=%d workers=%d java=%s load average %s; processes %s; CPUs %s; logs in %s%n",
                        CORES, rate, seconds, workers, Runtime.version(), loadAverage(),
                        cpu.describe(), pinning, work);

                HttpRequest direct = request(URI.create("http://127.0.0.1:" + fakePort + "/v1/chat/completions"), "sk-direct");
                HttpRequest viaEdge = request(URI.create("http://127.0.0.1:" + edgePort + "/v1/chat/completions"), key);
                // Warm-up until the JIT has compiled the hot paths of every JVM. With 5 s of warm-up the measured
                // phases were half the edge's JIT compilation ("(of it edge JIT)" in the CPU lines). A saturated box
                // starves the compiler threads (their queue only drains when there is CPU to spare), so after the
                // loaded rounds the edge is driven by a few clients until its compiler is nearly idle (bounded).
                int warmSeconds = Integer.getInteger("bench.warmSeconds", 30);
                for (int round = 0; round < 2; round++) {
                    closedLoop(client, direct, workers, warmSeconds / 2);
                    closedLoop(client, viaEdge, workers, warmSeconds);
                }
                long settleDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Integer.getInteger("bench.settleSeconds", 150));
                StringBuilder settle = new StringBuilder();
                while (System.nanoTime() < settleDeadline) {
                    closedLoop(client, direct, 2, 1);
                    Phase p = cpu.measure(() -> closedLoop(client, viaEdge, 4, 5));
                    double jitCores = p.cpuNanos().get(Cpu.JIT) / (double) p.wallNanos();
                    settle.append(String.format(" %.2f", jitCores));
                    if (jitCores < 0.03) {
                        break;
                    }
                }
                System.out.println("warm-up done; the edge's JIT in cores, per 5 s settling round:" + settle);
                openLoop(client, direct, rate, 2);
                openLoop(client, viaEdge, Math.min(rate, 200), 2);

                URI metrics = URI.create("http://127.0.0.1:" + adminPort + "/metrics");
                Phase sd = cpu.measure(() -> sequential(client, direct, SEQUENTIAL_CALLS));
                Map<String, Double> timers0 = edgeTimers(client, metrics);
                Phase se = cpu.measure(() -> sequential(client, viaEdge, SEQUENTIAL_CALLS));
                Map<String, Double> timers1 = edgeTimers(client, metrics);
                report("sequential (" + SEQUENTIAL_CALLS + " calls, one at a time)", sd, se);
                System.out.printf("  inside the edge, mean per call: quota reserve %.3f ms, upstream until its headers %.3f ms%n",
                        meanMillis(timers0, timers1, "edge_quota_decision_seconds"), meanMillis(timers0, timers1, "edge_upstream_seconds"));

                // The issue's rate, and below it where the box is not saturated by the edge path.
                for (int r : new int[] {rate / 4, rate / 2, rate}) {
                    Phase od = cpu.measure(() -> openLoop(client, direct, r, seconds));
                    Phase oe = cpu.measure(() -> openLoop(client, viaEdge, r, seconds));
                    report("open loop at " + r + "/s for " + seconds + " s", od, oe);
                }

                Phase cd = cpu.measure(() -> closedLoop(client, direct, workers, seconds));
                Phase ce = cpu.measure(() -> closedLoop(client, viaEdge, workers, seconds));
                report("closed loop, " + workers + " workers for " + seconds + " s", cd, ce);
                System.out.printf("max throughput: direct %.0f/s, edge %.0f/s (%.0f%% of direct); load average %s%n",
                        cd.callsPerSecond(), ce.callsPerSecond(), 100 * ce.callsPerSecond() / cd.callsPerSecond(), loadAverage());
                if (!fake.isAlive() || !edge.isAlive()) {
                    throw new IllegalStateException("a JVM of the run died (fake alive " + fake.isAlive() + ", edge alive "
                            + edge.isAlive() + "); the numbers above are not valid; logs in " + work);
                }
            }
        }
    }

    /** The sums and counts of the edge's decision and upstream timers, from its Prometheus endpoint. */
    private static Map<String, Double> edgeTimers(HttpClient client, URI metrics) throws Exception {
        Map<String, Double> m = new HashMap<>();
        for (String line : client.send(HttpRequest.newBuilder(metrics).build(), HttpResponse.BodyHandlers.ofString()).body().split("\n")) {
            for (String t : List.of("edge_quota_decision_seconds", "edge_upstream_seconds")) {
                for (String suffix : List.of("_sum", "_count")) {
                    if (line.startsWith(t + suffix + " ") || line.startsWith(t + suffix + "{")) {
                        m.merge(t + suffix, Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)), Double::sum);
                    }
                }
            }
        }
        return m;
    }

    private static double meanMillis(Map<String, Double> before, Map<String, Double> after, String timer) {
        double n = after.getOrDefault(timer + "_count", 0.0) - before.getOrDefault(timer + "_count", 0.0);
        double sum = after.getOrDefault(timer + "_sum", 0.0) - before.getOrDefault(timer + "_sum", 0.0);
        return n == 0 ? Double.NaN : 1000 * sum / n;
    }

    private static String newUserWithKey(Engines engines, String jdbcUrl) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl(jdbcUrl);
        ds.setUser(engines.postgres().user());
        ds.setPassword(engines.postgres().password());
        DSLContext db = DSL.using(ds, SQLDialect.POSTGRES);
        String userId = "u-bench";
        db.insertInto(PLAN).set(PLAN.PLAN_ID, "plan-bench").set(PLAN.DISPLAY_NAME, "bench")
                .set(PLAN.MONTHLY_CREDIT_NANO_USD, Money.usd(1_000_000)).set(PLAN.REQUESTS_PER_MINUTE, 10_000_000)
                .set(PLAN.TOKENS_PER_MINUTE, 1_000_000_000L).execute();
        db.insertInto(ACCOUNT).set(ACCOUNT.USER_ID, userId).set(ACCOUNT.TENANT_ID, "t-bench").set(ACCOUNT.PLAN_ID, "plan-bench").execute();
        ApiKeys.IssuedKey issued = ApiKeys.issue();
        db.insertInto(API_KEY).set(API_KEY.API_KEY_ID, "k-bench").set(API_KEY.USER_ID, userId)
                .set(API_KEY.KEY_PREFIX, issued.prefix()).set(API_KEY.SALT, issued.salt()).set(API_KEY.KEY_HASH, issued.hash())
                .execute();
        return issued.key();
    }

    private static HttpRequest request(URI uri, String key) {
        return HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer " + key)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(BODY)).build();
    }

    private static void report(String title, Phase direct, Phase edge) {
        System.out.println(title + ":");
        System.out.println("  direct " + direct);
        System.out.println("  edge   " + edge);
        System.out.printf("  added latency p50 %.3f ms, p99 %.3f ms%n",
                (edge.h.getValueAtPercentile(50) - direct.h.getValueAtPercentile(50)) / 1e6,
                (edge.h.getValueAtPercentile(99) - direct.h.getValueAtPercentile(99)) / 1e6);
    }

    /** Latencies (ns, errors included at their elapsed time) and the count of calls that did not answer 200. */
    record Result(Histogram h, long errors) {
    }

    /** A measured phase: its result, wall time and the CPU each process used in it. */
    record Phase(Histogram h, long errors, long wallNanos, Map<String, Long> cpuNanos, long boxBusyNanos, long boxNanos) {

        long ok() {
            return h.getTotalCount() - errors;
        }

        double callsPerSecond() {
            return ok() / (wallNanos / 1e9);
        }

        @Override
        public String toString() {
            StringBuilder cpu = new StringBuilder();
            long ours = 0;
            for (Map.Entry<String, Long> e : cpuNanos.entrySet()) {
                cpu.append(String.format(" %s %.0f", e.getKey(), e.getValue() / 1e3 / Math.max(1, ok())));
                if (!e.getKey().startsWith("(")) {
                    ours += e.getValue();
                }
            }
            return String.format("n=%d errors=%d %.0f/s p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f ms%n"
                            + "         CPU us per call:%s; box busy %.0f%% of %d cores (other processes %.0f%%)",
                    h.getTotalCount(), errors, callsPerSecond(), h.getValueAtPercentile(50) / 1e6, h.getValueAtPercentile(90) / 1e6,
                    h.getValueAtPercentile(99) / 1e6, h.getValueAtPercentile(99.9) / 1e6, h.getMaxValue() / 1e6, cpu,
                    100.0 * boxBusyNanos / boxNanos, CORES,
                    100.0 * Math.max(0, boxBusyNanos - ours) / boxNanos);
        }
    }

    interface Run {
        Result run() throws Exception;
    }

    /** CPU time of the benchmark's processes, from /proc, and of the whole box, from /proc/stat. */
    static final class Cpu {
        private final Map<String, List<Long>> pids = new LinkedHashMap<>();
        private final long ticksPerSecond = 100; // USER_HZ on Linux
        static final String JIT = "(of it edge JIT)";

        Cpu(Map<String, Predicate<Long>> groups) {
            pids.put("loadgen", List.of(ProcessHandle.current().pid()));
            List<Long> all = ProcessHandle.allProcesses().map(ProcessHandle::pid).toList();
            for (String g : List.of("fake", "edge", "kafka", "redis", "postgres")) {
                pids.put(g, all.stream().filter(groups.get(g)).toList());
            }
        }

        /** CPU of the edge JVM's JIT compiler threads, a part of the edge's CPU: near 0 once it is warm. */
        private long jitNanos() {
            long sum = 0;
            for (long pid : pids.get("edge")) {
                try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
                    for (Path t : tasks.toList()) {
                        try {
                            String stat = Files.readString(t.resolve("stat"));
                            String name = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
                            if (name.contains("CompilerThre")) {
                                sum += cpuNanosOf(stat);
                            }
                        } catch (IOException | RuntimeException gone) {
                            // a thread that ended
                        }
                    }
                } catch (IOException | RuntimeException gone) {
                    // the process ended
                }
            }
            return sum;
        }

        String describe() {
            return pids.toString();
        }

        /**
         * Pins each group's processes (every thread, and children forked later, such as Postgres backends) to CPUs
         * with {@code taskset}: {@code spec} is {@code group=cpu-list} pairs separated by semicolons, e.g.
         * {@code loadgen=0-1;fake=0-1;edge=2-3;redis=4;kafka=5;postgres=5}. Empty: nothing is pinned (the default;
         * every process may run on every core, as on a shared box). Returns the affinity in force, per group.
         */
        String pin(String spec) throws IOException, InterruptedException {
            Map<String, String> cpus = new LinkedHashMap<>();
            for (String pair : spec.split(";")) {
                if (pair.isBlank()) {
                    continue;
                }
                String[] kv = pair.split("=", 2);
                if (kv.length != 2 || !pids.containsKey(kv[0].strip()) || !kv[1].strip().matches("[0-9,-]+")) {
                    throw new IllegalArgumentException("bench.cpus: '" + pair + "' is not group=cpu-list with a group of " + pids.keySet());
                }
                cpus.put(kv[0].strip(), kv[1].strip());
            }
            if (cpus.isEmpty()) {
                return "not pinned " + affinity();
            }
            for (Map.Entry<String, String> e : cpus.entrySet()) {
                for (long pid : pids.get(e.getKey())) {
                    Process taskset = new ProcessBuilder("taskset", "-a", "-p", "-c", e.getValue(), Long.toString(pid))
                            .redirectErrorStream(true).start();
                    String out = new String(taskset.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                    if (!taskset.waitFor(10, TimeUnit.SECONDS) || taskset.exitValue() != 0) {
                        throw new IllegalStateException("taskset could not pin " + e.getKey() + " (pid " + pid + ") to CPUs "
                                + e.getValue() + ": " + out.strip());
                    }
                }
            }
            return "pinned " + affinity();
        }

        /** Each group's CPUs as the kernel reports them ({@code Cpus_allowed_list} of its processes). */
        private String affinity() {
            Map<String, Set<String>> allowed = new LinkedHashMap<>();
            for (Map.Entry<String, List<Long>> e : pids.entrySet()) {
                Set<String> lists = new TreeSet<>();
                for (long pid : e.getValue()) {
                    try {
                        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                            if (line.startsWith("Cpus_allowed_list:")) {
                                lists.add(line.substring(line.indexOf(':') + 1).strip());
                            }
                        }
                    } catch (IOException gone) {
                        // a process that ended (a Postgres backend)
                    }
                }
                allowed.put(e.getKey(), lists);
            }
            return allowed.toString();
        }

        Phase measure(Run run) throws Exception {
            Map<String, Long> before = snapshot();
            long[] box0 = box();
            long t0 = System.nanoTime();
            Result r = run.run();
            long wall = System.nanoTime() - t0;
            long[] box1 = box();
            Map<String, Long> after = snapshot();
            Map<String, Long> used = new LinkedHashMap<>();
            before.forEach((g, v) -> used.put(g, after.get(g) - v));
            long busy = (box1[0] - box0[0]) * 1_000_000_000L / ticksPerSecond;
            long total = (box1[1] - box0[1]) * 1_000_000_000L / ticksPerSecond;
            return new Phase(r.h(), r.errors(), wall, used, busy, total);
        }

        private Map<String, Long> snapshot() {
            Map<String, Long> m = new LinkedHashMap<>();
            pids.forEach((g, list) -> m.put(g, list.stream().mapToLong(this::cpuNanos).sum()));
            m.put(JIT, jitNanos());
            m.put("loadgen", ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime());
            return m;
        }

        /** utime + stime of one process (all its threads); 0 once it is gone. */
        private long cpuNanos(long pid) {
            try {
                return cpuNanosOf(Files.readString(Path.of("/proc/" + pid + "/stat")));
            } catch (IOException | RuntimeException gone) {
                return 0;
            }
        }

        /** utime + stime of a {@code /proc/<pid>/stat} or {@code /proc/<pid>/task/<tid>/stat} line. */
        private long cpuNanosOf(String stat) {
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 1_000_000_000L / ticksPerSecond;
        }

        /** {busy ticks, total ticks} of all cores. */
        private static long[] box() throws IOException {
            String[] f = Files.readAllLines(Path.of("/proc/stat")).getFirst().trim().split("\\s+");
            long total = 0;
            for (int i = 1; i < Math.min(f.length, 9); i++) {
                total += Long.parseLong(f[i]);
            }
            long idle = Long.parseLong(f[4]) + Long.parseLong(f[5]);
            return new long[] {total - idle, total};
        }
    }

    static String cmdline(long pid) {
        try {
            return new String(Files.readAllBytes(Path.of("/proc/" + pid + "/cmdline")), StandardCharsets.UTF_8).replace('\0', ' ');
        } catch (IOException e) {
            return "";
        }
    }

    private static boolean isOurs(long pid) {
        return ProcessHandle.current().descendants().anyMatch(p -> p.pid() == pid);
    }

    /** The postmaster listening on {@code port}, or one of its backends and helpers. */
    static boolean isPostgresOf(long pid, int port) {
        return isPostmasterOf(pid, port) || ProcessHandle.of(pid).flatMap(ProcessHandle::parent)
                .map(p -> isPostmasterOf(p.pid(), port)).orElse(false);
    }

    private static boolean isPostmasterOf(long pid, int port) {
        String c = cmdline(pid);
        return c.contains("postgres") && c.matches(".*-p\\s+" + port + "(\\s.*|$)");
    }

    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "?";
        }
    }

    /** One call at a time: the added cost of the edge without any queueing. */
    static Result sequential(HttpClient client, HttpRequest request, int calls) throws Exception {
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(30), 3);
        long errors = 0;
        for (int i = 0; i < calls; i++) {
            long t0 = System.nanoTime();
            int status;
            try {
                status = client.send(request, HttpResponse.BodyHandlers.ofByteArray()).statusCode();
            } catch (IOException e) {
                status = -1;
            }
            h.recordValue(Math.min(System.nanoTime() - t0, h.getHighestTrackableValue()));
            if (status != 200) {
                errors++;
            }
        }
        return new Result(h, errors);
    }

    /** Sends {@code rate × seconds} requests on a fixed schedule, whatever the responses do (open loop). */
    static Result openLoop(HttpClient client, HttpRequest request, int rate, int seconds) throws InterruptedException {
        int total = rate * seconds;
        long intervalNanos = 1_000_000_000L / rate;
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(60), 3);
        AtomicLong errors = new AtomicLong();
        CountDownLatch done = new CountDownLatch(total);
        long start = System.nanoTime() + 1_000_000;
        for (int i = 0; i < total; i++) {
            long scheduled = start + i * intervalNanos;
            long wait;
            while ((wait = scheduled - System.nanoTime()) > 0) {
                LockSupport.parkNanos(wait);
            }
            client.sendAsync(request, HttpResponse.BodyHandlers.ofByteArray()).whenComplete((r, t) -> {
                long latency = System.nanoTime() - scheduled;
                if (t != null || r.statusCode() != 200) {
                    errors.incrementAndGet();
                }
                synchronized (h) {
                    h.recordValue(Math.min(latency, h.getHighestTrackableValue()));
                }
                done.countDown();
            });
        }
        if (!done.await(60, TimeUnit.SECONDS)) {
            System.out.println("  (gave up waiting for " + done.getCount() + " responses; counted as errors at 60 s)");
            synchronized (h) {
                h.recordValueWithCount(h.getHighestTrackableValue(), done.getCount());
            }
            errors.addAndGet(done.getCount());
        }
        synchronized (h) {
            return new Result(h.copy(), errors.get());
        }
    }

    /** {@code workers} clients each sending the next request as soon as the last one answered. */
    static Result closedLoop(HttpClient client, HttpRequest request, int workers, int seconds) throws InterruptedException {
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(60), 3);
        AtomicLong errors = new AtomicLong();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int w = 0; w < workers; w++) {
                pool.submit(() -> {
                    while (System.nanoTime() < deadline) {
                        long t0 = System.nanoTime();
                        int status;
                        try {
                            status = client.send(request, HttpResponse.BodyHandlers.ofByteArray()).statusCode();
                        } catch (InterruptedException e) {
                            return;
                        } catch (IOException e) {
                            status = -1;
                        }
                        long latency = System.nanoTime() - t0;
                        synchronized (h) {
                            h.recordValue(Math.min(latency, h.getHighestTrackableValue()));
                        }
                        if (status != 200) {
                            errors.incrementAndGet();
                        }
                    }
                });
            }
        }
        return new Result(h, errors.get());
    }
}
