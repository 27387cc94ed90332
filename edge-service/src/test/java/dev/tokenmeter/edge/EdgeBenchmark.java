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
import dev.tokenmeter.testkit.ShippedJar;
import dev.tokenmeter.testkit.openai.FakeOpenAiMain;
import dev.tokenmeter.testkit.support.FreePorts;
import org.HdrHistogram.Histogram;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.postgresql.ds.PGSimpleDataSource;

import io.lettuce.core.AclSetuserArgs;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;

import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BiFunction;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;
import static dev.tokenmeter.db.jooq.Tables.API_KEY;
import static dev.tokenmeter.db.jooq.Tables.PLAN;

/**
 * Edge benchmark (issues 4 and 15) — not a test. Drives non-streaming and streaming chat calls directly against a
 * fake OpenAI upstream, through the peer gateway (nginx + ngx_lua, Kong's architecture: {@link PeerGateway}) and
 * through the edge, all three in one run on the same upstream and the same Redis, on loopback only, bounded in count
 * and time.
 *
 * <p>Processes, so that none bills its CPU to another: this JVM and {@code wrk} (C) are the load generators; the
 * fake upstream runs {@link FakeOpenAiMain} in its own JVM; the edge runs as users deploy it, its shipped jar
 * ({@code edge-service/target/edge-service-*-all.jar}, {@link ChildJvm#shippedJar}) configured by environment only
 * (Redis quota engine, spooling Kafka sink, Postgres keys and prices, background sweeper and reconciler); the peer is
 * nginx's master and worker. Kafka (its own JVM), Redis and Postgres are the testkit's embedded engines. For every
 * phase the CPU time each process used is read from {@code /proc} and printed per completed call, next to the whole
 * box's busy time (other work on the box shows up as the difference).
 *
 * <p>Set-up: {@code bin/bench-tools} installs nginx, its Lua module, lua-cjson, redis-cli and wrk when missing; the
 * peer logs in to Redis as its {@code default} user (it has no login), which the run switches on, and its user's
 * credit is reset before every round so that it never rejects.
 *
 * <p>Phases: warm-up (closed loop, direct and peer 15 s, edge 30 s and edge streaming, twice;
 * {@code -Dbench.warmSeconds}; then the edge until its JIT is nearly idle). Then {@code -Dbench.rounds} rounds
 * (default 3), each running every phase for direct, then peer and edge in an order that alternates per round, so that
 * noise hits all three: (a) one connection: {@code wrk -t1 -c1} for {@code SECONDS} s and the JDK {@code HttpClient}
 * harness one call at a time ({@value #SEQUENTIAL_CALLS} calls) — wrk's script here also times each call
 * itself, as wrk's printed distribution is corrected for coordinated omission ({@link Wrk}); (b) closed loop with 16 connections: {@code wrk -t2
 * -c16} and 16 JDK-client workers for {@code SECONDS} s each; (d) streaming ({@code "stream":true}), one connection,
 * time to the first body byte ({@value #STREAM_CALLS} calls). Each round prints a table and the ratios against issue
 * 15's targets; the end prints the median of the same-round ratios. Last, unless {@code -Dbench.issue4=false}, issue
 * 4's phases once: open loop at {@code RATE}/4, /2 and {@code RATE}/s for {@code SECONDS} s (requests sent on a fixed
 * schedule whatever the answers do; latency from each request's scheduled start, so queueing counts and there is no
 * coordinated omission; failed calls are recorded at their elapsed time and counted) and {@code WORKERS} closed-loop
 * clients.
 *
 * <p>Arguments: rate (default 1000), seconds (10), workers (32). {@code BENCH_EDGE_JVM_OPTS} adds JVM options to
 * the edge's JVM (e.g. {@code -XX:StartFlightRecording=filename=edge.jfr,settings=profile}). {@code -Dbench.cpus}
 * pins the processes to CPUs (see {@link Cpu#pin}). {@code -Dbench.peerGateway} is the peer gateway's directory
 * (default {@code <repository>/../shared/peer-gateway}).
 *
 * <p>Context switches: every phase also prints, per process group, the voluntary and involuntary context switches per
 * completed call, summed over the group's threads ({@link ContextSwitches}), and for a gateway the same by thread
 * group; each phase's line gives its start instant and length, so that a JFR recording of the whole run can be cut to
 * one phase ({@link EdgeBenchmarkProfile}). The gateways' CPU lines also show their kernel part (stime).
 *
 * <p>A/B: {@code BENCH_EDGE_B_JAR} (another build's {@code -all.jar}) and/or {@code BENCH_EDGE_B_JVM_OPTS} start a
 * second edge, "edge-b", on the same engines, which every round measures beside the first (gateways in the order
 * peer, edge, edge-b, reversed every other round); each round then also prints edge-b ÷ edge ratios, and their
 * medians — a change to the edge is kept only with a gain there.
 */
public final class EdgeBenchmark {

    private static final String BODY = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in five words\"}]}";
    private static final String STREAM_BODY = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in five words\"}]}";
    private static final int SEQUENTIAL_CALLS = 2000;
    private static final int STREAM_CALLS = 1000;
    /** The closed-loop concurrency of issue 15's targets. */
    private static final int CONNECTIONS = 16;
    /** The box's cores, counted before {@code bench.cpus} pins this JVM to fewer (which the JVM then reports). */
    private static final int CORES = Runtime.getRuntime().availableProcessors();
    /** Source folders and poms the shipped edge jar is built from: a jar older than any of them is stale. */
    private static final List<String> EDGE_SOURCES = List.of("pom.xml", "edge-service", "usage-events", "service-config",
            "billing-db", "schemas");

    /** One way to the upstream: its requests for the JDK client and its script for wrk. */
    record Target(String name, String url, HttpRequest plain, HttpRequest stream, Path wrkScript, Path wrkTimedScript) {
    }

    public static void main(String[] args) throws Exception {
        int rate = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        int workers = args.length > 2 ? Integer.parseInt(args[2]) : 32;
        int rounds = Integer.getInteger("bench.rounds", 3);
        if (rate <= 0 || rate > 20_000 || seconds <= 0 || seconds > 120 || workers <= 0 || workers > 512 || rounds <= 0 || rounds > 20) {
            throw new IllegalArgumentException("rate 1..20000, seconds 1..120, workers 1..512, bench.rounds 1..20");
        }
        Path repository = PeerGateway.repository();
        installTools(repository);
        Path jar = freshEdgeJar(repository);
        Path peerHome = PeerGateway.home();
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
            // A second edge, "edge-b", for an A/B comparison in the same rounds: another build's jar, other JVM options.
            String jarB = System.getenv().getOrDefault("BENCH_EDGE_B_JAR", "").strip();
            String optsB = System.getenv().getOrDefault("BENCH_EDGE_B_JVM_OPTS", "").strip();
            boolean withB = !jarB.isEmpty() || !optsB.isEmpty();
            int edgeBPort = FreePorts.pick();
            Map<String, String> edgeBEnv = new HashMap<>(edgeEnv);
            edgeBEnv.put("EDGE_PORT", Integer.toString(edgeBPort));
            edgeBEnv.put("ADMIN_PORT", Integer.toString(FreePorts.pick()));
            edgeBEnv.put("SPOOL_DIR", work.resolve("spool-b").toString());
            List<String> edgeBJvm = new ArrayList<>(List.of("-Xmx1g", "-XX:+ExitOnOutOfMemoryError", "-Xlog:gc:file=" + work.resolve("edge-b-gc.log")));
            if (!optsB.isEmpty()) {
                edgeBJvm.addAll(Arrays.asList(optsB.split("\\s+")));
            }
            ChildJvm edgeBJvmProcess = !withB ? null : jarB.isEmpty()
                    ? ChildJvm.shippedJar("edge-service", edgeBEnv, work.resolve("edge-b.log"), edgeBJvm.toArray(String[]::new))
                    : ChildJvm.jar(Path.of(jarB), edgeBEnv, work.resolve("edge-b.log"), edgeBJvm.toArray(String[]::new));
            RedisClient redisClient = RedisClient.create(engines.redis().uri());
            try (StatefulRedisConnection<String, String> redis = redisClient.connect();
                 ChildJvm fake = new ChildJvm(FakeOpenAiMain.class.getName(), Map.of("FAKE_OPENAI_PORT", Integer.toString(fakePort)),
                         work.resolve("fake.log"), "-Xmx1g", "-XX:+ExitOnOutOfMemoryError", "-Xlog:gc:file=" + work.resolve("fake-gc.log")).start();
                 ChildJvm edge = ChildJvm.shippedJar("edge-service", edgeEnv, work.resolve("edge.log"), edgeJvm.toArray(String[]::new)).start();
                 ChildJvm edgeB = edgeBJvmProcess == null ? null : edgeBJvmProcess.start();
                 HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
                // The peer has no Redis login: it talks to the default user, which the testkit's Redis has off.
                redis.sync().aclSetuser("default", AclSetuserArgs.Builder.on().nopass().allKeys().allChannels().allCommands());
                redis.sync().set(PeerGateway.CREDIT_KEY, "0");
                ChildJvm.awaitHttp(URI.create("http://127.0.0.1:" + fakePort + "/v1/models"), status -> true,
                        Duration.ofSeconds(90), fake, List.of());
                ChildJvm.awaitHttp(URI.create("http://127.0.0.1:" + edgePort + "/health/ready"), status -> status == 200,
                        Duration.ofSeconds(90), edge, List.of(fake));
                if (edgeB != null) {
                    ChildJvm.awaitHttp(URI.create("http://127.0.0.1:" + edgeBPort + "/health/ready"), status -> status == 200,
                            Duration.ofSeconds(90), edgeB, List.of(fake, edge));
                }
                try (PeerGateway peer = PeerGateway.start(peerHome, fakePort, engines.redis().port(), work.resolve("peer"))) {
                    Set<Long> peerPids = Set.copyOf(peer.pids());
                    Map<String, Predicate<Long>> groups = new HashMap<>(Map.of(
                            "fake", pid -> pid == fake.pid(),
                            "edge", pid -> pid == edge.pid(),
                            "peer", peerPids::contains,
                            "kafka", pid -> cmdline(pid).contains("KafkaBrokerMain") && isOurs(pid),
                            "redis", pid -> cmdline(pid).contains("redis-server") && cmdline(pid).contains(Integer.toString(engines.redis().port())),
                            "postgres", pid -> isPostgresOf(pid, engines.postgres().port())));
                    if (edgeB != null) {
                        groups.put("edge-b", pid -> pid == edgeB.pid());
                    }
                    Cpu cpu = new Cpu(groups);
                    String pinning = cpu.pin(System.getProperty("bench.cpus", ""));
                    System.out.printf("cores=%d rate=%d/s seconds=%d workers=%d rounds=%d java=%s load average %s; edge %s; peer %s "
                                    + "(nginx %s); processes %s; CPUs %s; logs in %s%n",
                            CORES, rate, seconds, workers, rounds, Runtime.version(), loadAverage(), jar, peerHome,
                            nginxVersion(), cpu.describe(), pinning, work);
                    if (edgeB != null) {
                        System.out.printf("A/B: edge-b is %s with JVM options %s (edge: %s)%n", jarB.isEmpty() ? jar : jarB, edgeBJvm, edgeJvm);
                    }

                    Target direct = target("direct", "http://127.0.0.1:" + fakePort, "sk-direct", work);
                    Target viaPeer = target("peer", "http://127.0.0.1:" + peer.port(), PeerGateway.KEY, work);
                    Target viaEdge = target("edge", "http://127.0.0.1:" + edgePort, key, work);
                    List<Target> edges = edgeB == null ? List.of(viaEdge) : List.of(viaEdge, target("edge-b", "http://127.0.0.1:" + edgeBPort, key, work));
                    warmUp(client, cpu, direct, viaPeer, edges, workers);

                    URI metrics = URI.create("http://127.0.0.1:" + adminPort + "/metrics");
                    List<List<Check>> all = new ArrayList<>();
                    for (int round = 1; round <= rounds; round++) {
                        redis.sync().set(PeerGateway.CREDIT_KEY, "0");
                        // Gateways in the reverse order every other round; with edge-b: peer, edge, edge-b, then edge-b, edge, peer.
                        List<Target> gateways = new ArrayList<>(List.of(viaPeer));
                        gateways.addAll(edges);
                        List<Target> order = new ArrayList<>(List.of(direct));
                        order.addAll(round % 2 == 1 ? gateways : gateways.reversed());
                        all.add(round(round, rounds, order, client, cpu, seconds, metrics));
                    }
                    printMedians(all);
                    System.out.printf("peer: %s usage records in its Redis stream, its user's credit used %s nano-USD since the last round began%n",
                            redis.sync().xlen("usage-stream"), redis.sync().get(PeerGateway.CREDIT_KEY));

                    if (Boolean.parseBoolean(System.getProperty("bench.issue4", "true"))) {
                        issue4Phases(client, cpu, List.of(direct, viaPeer, viaEdge), rate, seconds, workers);
                    }
                    if (!fake.isAlive() || !edge.isAlive() || !peer.isAlive() || (edgeB != null && !edgeB.isAlive())) {
                        throw new IllegalStateException("a process of the run died (fake alive " + fake.isAlive() + ", edge alive "
                                + edge.isAlive() + ", peer alive " + peer.isAlive() + "); the numbers above are not valid; logs in " + work);
                    }
                }
            } finally {
                redisClient.shutdown();
            }
        }
    }

    /** {@code bin/bench-tools} installs what is missing (nothing when all is there), or the run stops saying how. */
    private static void installTools(Path repository) throws IOException, InterruptedException {
        Path script = repository.resolve("bin").resolve("bench-tools");
        Process p = new ProcessBuilder(script.toString()).inheritIO().start();
        if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IllegalStateException("the edge benchmark needs nginx-light, libnginx-mod-http-lua, lua-cjson, redis-tools and wrk; "
                    + script + " could not install them: run it as root (or install them with your package manager)");
        }
    }

    /** The shipped edge jar, refused when a source it is built from changed after it was built. */
    private static Path freshEdgeJar(Path repository) throws IOException {
        Path jar = ShippedJar.locate("edge-service");
        long built = Files.getLastModifiedTime(jar).toMillis();
        for (String source : EDGE_SOURCES) {
            Path root = repository.resolve(source);
            List<Path> tree = Files.isDirectory(root) ? List.of(root.resolve("pom.xml"), root.resolve("src").resolve("main")) : List.of(root);
            for (Path t : tree) {
                if (!Files.exists(t)) {
                    continue;
                }
                try (var files = Files.walk(t)) {
                    Optional<Path> newer = files.filter(Files::isRegularFile).filter(f -> modified(f) > built).findFirst();
                    if (newer.isPresent()) {
                        throw new IllegalStateException("the shipped jar " + jar + " is older than " + newer.get()
                                + "; build it first: ./mvnw -B -ntp package -DskipTests -pl edge-service -am");
                    }
                }
            }
        }
        return jar;
    }

    private static long modified(Path f) {
        try {
            return Files.getLastModifiedTime(f).toMillis();
        } catch (IOException e) {
            return 0;
        }
    }

    private static String nginxVersion() {
        try {
            Process p = new ProcessBuilder("nginx", "-v").redirectErrorStream(true).start();
            String v = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            p.waitFor(10, TimeUnit.SECONDS);
            return v.substring(v.indexOf('/') + 1);
        } catch (IOException | InterruptedException | RuntimeException e) {
            return "?";
        }
    }

    private static Target target(String name, String base, String key, Path work) throws IOException {
        String url = base + "/v1/chat/completions";
        return new Target(name, url, request(URI.create(url), key, BODY, "application/json"),
                request(URI.create(url), key, STREAM_BODY, "text/event-stream"), Wrk.script(work, "post-" + name, key, BODY, false),
                Wrk.script(work, "post-timed-" + name, key, BODY, true));
    }

    /**
     * Until the JIT has compiled the hot paths of every JVM. With 5 s of warm-up the measured phases were half the
     * edge's JIT compilation ("(of it edge JIT)" in the CPU lines). A saturated box starves the compiler threads
     * (their queue only drains when there is CPU to spare), so after the loaded rounds the edge is driven by a few
     * clients until its compiler is nearly idle (bounded).
     */
    private static void warmUp(HttpClient client, Cpu cpu, Target direct, Target peer, List<Target> edges, int workers) throws Exception {
        int warmSeconds = Integer.getInteger("bench.warmSeconds", 30);
        for (int round = 0; round < 2; round++) {
            closedLoop(client, direct.plain(), workers, warmSeconds / 2);
            closedLoop(client, peer.plain(), workers, warmSeconds / 2);
            for (Target edge : edges) {
                closedLoop(client, edge.plain(), workers, warmSeconds);
                closedLoop(client, edge.stream(), 4, Math.max(1, warmSeconds / 4));
            }
        }
        long settleDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Integer.getInteger("bench.settleSeconds", 150));
        StringBuilder settle = new StringBuilder();
        while (System.nanoTime() < settleDeadline) {
            closedLoop(client, direct.plain(), 2, 1);
            Phase p = cpu.measure(() -> {
                Result last = null;
                for (Target edge : edges) {
                    last = closedLoop(client, edge.plain(), 4, Math.max(1, 5 / edges.size()));
                }
                return last;
            });
            double jitCores = p.cpuNanos().get(Cpu.JIT) / (double) p.wallNanos();
            settle.append(String.format(" %.2f", jitCores));
            if (jitCores < 0.03) {
                break;
            }
        }
        System.out.println("warm-up done; the edge's JIT in cores, per 5 s settling round:" + settle);
        openLoop(client, direct.plain(), 1000, 2);
        openLoop(client, peer.plain(), 200, 2);
        for (Target edge : edges) {
            openLoop(client, edge.plain(), 200, 2);
        }
    }

    /** One round of issue 15's phases over {@code order}; prints each phase, the round's table and its ratios. */
    private static List<Check> round(int round, int rounds, List<Target> order, HttpClient client, Cpu cpu, int seconds,
                                     URI metrics) throws Exception {
        System.out.printf("%n=== round %d of %d: order %s; load average %s%n", round, rounds,
                order.stream().map(Target::name).toList(), loadAverage());
        Map<String, Phase> wrk1 = new LinkedHashMap<>();
        Map<String, Phase> java1 = new LinkedHashMap<>();
        Map<String, Phase> wrk16 = new LinkedHashMap<>();
        Map<String, Phase> java16 = new LinkedHashMap<>();
        Map<String, Phase> ttfb = new LinkedHashMap<>();
        System.out.println("(a) one connection, wrk -t1 -c1 for " + seconds + " s:");
        for (Target t : order) {
            wrk1.put(t.name(), print(t, cpu.measure(() -> Result.of(Wrk.run(t.url(), t.wrkTimedScript(), 1, 1, seconds)))));
        }
        System.out.println("(a) one connection, JDK HttpClient, " + SEQUENTIAL_CALLS + " calls one at a time:");
        for (Target t : order) {
            Map<String, Double> timers0 = t.name().equals("edge") ? edgeTimers(client, metrics) : Map.of();
            java1.put(t.name(), print(t, cpu.measure(() -> sequential(client, t.plain(), SEQUENTIAL_CALLS))));
            if (t.name().equals("edge")) {
                Map<String, Double> timers1 = edgeTimers(client, metrics);
                System.out.printf("         inside the edge, mean per call: quota reserve %.3f ms, upstream until its headers %.3f ms%n",
                        meanMillis(timers0, timers1, "edge_quota_decision_seconds"), meanMillis(timers0, timers1, "edge_upstream_seconds"));
            }
        }
        System.out.println("(b) closed loop, wrk -t2 -c" + CONNECTIONS + " for " + seconds + " s:");
        for (Target t : order) {
            wrk16.put(t.name(), print(t, cpu.measure(() -> Result.of(Wrk.run(t.url(), t.wrkScript(), 2, CONNECTIONS, seconds)))));
        }
        System.out.println("(b) closed loop, JDK HttpClient, " + CONNECTIONS + " workers for " + seconds + " s:");
        for (Target t : order) {
            java16.put(t.name(), print(t, cpu.measure(() -> closedLoop(client, t.plain(), CONNECTIONS, seconds))));
        }
        System.out.println("(d) streaming, JDK HttpClient, one connection, time to the first body byte, " + STREAM_CALLS + " calls:");
        for (Target t : order) {
            ttfb.put(t.name(), print(t, cpu.measure(() -> firstByte(client, t.stream(), STREAM_CALLS))));
        }

        System.out.printf("round %d summary (µs; CPU in µs per call; added = gateway − direct):%n", round);
        System.out.println("  | phase | " + String.join(" | ", wrk1.keySet().stream().sorted(java.util.Comparator.comparing(EdgeBenchmark::column)).toList()) + " |");
        System.out.println("  |---|---|---|---|" + (wrk1.containsKey("edge-b") ? "---|" : ""));
        row("wrk 1 conn p50 / p99", wrk1, EdgeBenchmark::latencies);
        row("wrk 1 conn added p50 / p99", wrk1, null);
        row("wrk 1 conn raw p50 / p99", wrk1, (t, p) -> fmt(p.r().rawP50Micros()) + " / " + fmt(p.r().rawP99Micros()));
        row("JDK 1 conn p50 / p99", java1, EdgeBenchmark::latencies);
        row("JDK 1 conn added p50 / p99", java1, null);
        row("wrk 16 conn calls/s", wrk16, (t, p) -> fmt(p.callsPerSecond()));
        row("JDK 16 conn calls/s", java16, (t, p) -> fmt(p.callsPerSecond()));
        row("wrk 1 conn CPU/call: gateway / redis / kafka / fake", wrk1, EdgeBenchmark::cpuCell);
        row("wrk 16 conn CPU/call: gateway / redis / kafka / fake", wrk16, EdgeBenchmark::cpuCell);
        row("JDK 16 conn CPU/call: gateway / redis / kafka / fake", java16, EdgeBenchmark::cpuCell);
        row("wrk 1 conn switches/call, vol+invol: gateway / redis / fake", wrk1, EdgeBenchmark::switchCell);
        row("wrk 16 conn switches/call, vol+invol: gateway / redis / fake", wrk16, EdgeBenchmark::switchCell);
        row("streaming switches/call, vol+invol: gateway / redis / fake", ttfb, EdgeBenchmark::switchCell);
        row("streaming TTFB p50 / p99", ttfb, EdgeBenchmark::latencies);
        row("streaming TTFB added p50 / p99", ttfb, null);

        List<Check> checks = new ArrayList<>(List.of(
                Check.atMost("wrk 1 conn: added p50 edge ÷ peer", addedRatio(wrk1, Result::p50Micros), 2),
                Check.atMost("wrk 1 conn: added p99 edge ÷ peer", addedRatio(wrk1, Result::p99Micros), 3),
                Check.atMost("wrk 1 conn raw: added p50 edge ÷ peer", addedRatio(wrk1, Result::rawP50Micros), 2),
                Check.atMost("wrk 1 conn raw: added p99 edge ÷ peer", addedRatio(wrk1, Result::rawP99Micros), 3),
                Check.atLeast("wrk 16 conn: throughput edge ÷ peer", wrk16.get("edge").callsPerSecond() / wrk16.get("peer").callsPerSecond(), 0.5),
                Check.atMost("wrk 16 conn: CPU per call edge ÷ nginx", cpuPerCall(wrk16, "edge") / cpuPerCall(wrk16, "peer"), 2),
                Check.atMost("streaming: TTFB p50 edge − peer (ms)", (ttfb.get("edge").r().p50Micros() - ttfb.get("peer").r().p50Micros()) / 1e3, 0.5),
                Check.info("streaming: TTFB p99 edge − peer (ms)", (ttfb.get("edge").r().p99Micros() - ttfb.get("peer").r().p99Micros()) / 1e3),
                Check.info("wrk 1 conn: CPU per call edge ÷ nginx", cpuPerCall(wrk1, "edge") / cpuPerCall(wrk1, "peer")),
                Check.info("wrk 1 conn: switches per call edge ÷ nginx", switchesPerCall(wrk1, "edge") / switchesPerCall(wrk1, "peer")),
                Check.info("wrk 16 conn: switches per call edge ÷ nginx", switchesPerCall(wrk16, "edge") / switchesPerCall(wrk16, "peer")),
                Check.info("wrk 1 conn: edge switches per call", switchesPerCall(wrk1, "edge")),
                Check.info("wrk 1 conn: nginx switches per call", switchesPerCall(wrk1, "peer")),
                Check.info("wrk 16 conn: edge switches per call", switchesPerCall(wrk16, "edge")),
                Check.info("wrk 16 conn: nginx switches per call", switchesPerCall(wrk16, "peer")),
                Check.info("JDK 1 conn: added p50 edge ÷ peer", addedRatio(java1, Result::p50Micros)),
                Check.info("JDK 1 conn: added p99 edge ÷ peer", addedRatio(java1, Result::p99Micros)),
                Check.info("JDK 16 conn: throughput edge ÷ peer", java16.get("edge").callsPerSecond() / java16.get("peer").callsPerSecond()),
                Check.info("JDK 16 conn: CPU per call edge ÷ nginx", cpuPerCall(java16, "edge") / cpuPerCall(java16, "peer"))));
        if (wrk1.containsKey("edge-b")) {
            checks.addAll(abChecks(wrk1, wrk16, ttfb));
        }
        long errors = Stream.of(wrk1, java1, wrk16, java16, ttfb).flatMap(m -> m.values().stream()).mapToLong(p -> p.r().errors()).sum();
        System.out.printf("round %d vs issue 15's targets%s:%n", round, errors == 0 ? "" : " (" + errors + " FAILED CALLS in this round)");
        checks.forEach(c -> System.out.println("  " + c));
        return checks;
    }

    private static Phase print(Target t, Phase p) {
        System.out.printf("  %-6s %s%n", t.name(), p);
        if (!t.name().equals("direct")) {
            System.out.printf("         %s's threads, switches per call: %s%n", t.name(), p.threadSwitches(t.name()));
        }
        return p;
    }

    /**
     * edge-b against edge in the same round (A/B): each as a ratio b ÷ a, or a difference where a ratio means little.
     * "idle CPU" is each edge's CPU per second of the direct wrk phases, when neither is called.
     */
    private static List<Check> abChecks(Map<String, Phase> wrk1, Map<String, Phase> wrk16, Map<String, Phase> ttfb) {
        double idleA = (wrk1.get("direct").cpuNanos().getOrDefault("edge", 0L) + wrk16.get("direct").cpuNanos().getOrDefault("edge", 0L))
                / (double) (wrk1.get("direct").wallNanos() + wrk16.get("direct").wallNanos());
        double idleB = (wrk1.get("direct").cpuNanos().getOrDefault("edge-b", 0L) + wrk16.get("direct").cpuNanos().getOrDefault("edge-b", 0L))
                / (double) (wrk1.get("direct").wallNanos() + wrk16.get("direct").wallNanos());
        double rawA = wrk1.get("edge").r().rawP50Micros() - wrk1.get("direct").r().rawP50Micros();
        double rawB = wrk1.get("edge-b").r().rawP50Micros() - wrk1.get("direct").r().rawP50Micros();
        return List.of(
                Check.info("A/B wrk 1 conn raw: added p50 edge-b ÷ edge", rawA <= 0 || rawB < 0 ? Double.NaN : rawB / rawA),
                Check.info("A/B wrk 1 conn: CPU per call edge-b ÷ edge", cpuPerCall(wrk1, "edge-b") / cpuPerCall(wrk1, "edge")),
                Check.info("A/B wrk 16 conn: throughput edge-b ÷ edge", wrk16.get("edge-b").callsPerSecond() / wrk16.get("edge").callsPerSecond()),
                Check.info("A/B wrk 16 conn: CPU per call edge-b ÷ edge", cpuPerCall(wrk16, "edge-b") / cpuPerCall(wrk16, "edge")),
                Check.info("A/B wrk 1 conn: switches per call edge-b − edge", switchesPerCall(wrk1, "edge-b") - switchesPerCall(wrk1, "edge")),
                Check.info("A/B wrk 16 conn: switches per call edge-b − edge", switchesPerCall(wrk16, "edge-b") - switchesPerCall(wrk16, "edge")),
                Check.info("A/B streaming: TTFB p50 edge-b − edge (ms)", (ttfb.get("edge-b").r().p50Micros() - ttfb.get("edge").r().p50Micros()) / 1e3),
                Check.info("A/B idle CPU, ms per s: edge", idleA * 1e3),
                Check.info("A/B idle CPU, ms per s: edge-b", idleB * 1e3));
    }

    /** A summary row: direct, peer and edge cells, or (cell == null) the added latency of peer and edge. */
    private static void row(String title, Map<String, Phase> phases, BiFunction<String, Phase, String> cell) {
        StringBuilder b = new StringBuilder("  | " + title + " |");
        for (String name : phases.keySet().stream().sorted(java.util.Comparator.comparing(EdgeBenchmark::column)).toList()) {
            Phase p = phases.get(name);
            if (cell != null) {
                b.append(' ').append(cell.apply(name, p)).append(" |");
            } else if (name.equals("direct")) {
                b.append(" – |");
            } else {
                Phase d = phases.get("direct");
                b.append(' ').append(fmt(p.r().p50Micros() - d.r().p50Micros())).append(" / ")
                        .append(fmt(p.r().p99Micros() - d.r().p99Micros())).append(" |");
            }
        }
        System.out.println(b);
    }

    /** The column of a target in the summary table. */
    private static int column(String target) {
        return List.of("direct", "peer", "edge", "edge-b").indexOf(target);
    }

    private static String latencies(String target, Phase p) {
        return fmt(p.r().p50Micros()) + " / " + fmt(p.r().p99Micros());
    }

    /** The gateway's process (edge JVM or nginx; none for direct), Redis, the Kafka broker and the fake upstream. */
    private static String cpuCell(String target, Phase p) {
        String gateway = target.equals("direct") ? "–" : fmt(p.perCall(target));
        return gateway + " / " + fmt(p.perCall("redis")) + " / " + fmt(p.perCall("kafka")) + " / " + fmt(p.perCall("fake"));
    }

    /** Voluntary+involuntary switches per call of the gateway (none for direct), Redis and the fake upstream. */
    private static String switchCell(String target, Phase p) {
        StringBuilder b = new StringBuilder();
        for (String g : List.of(target, "redis", "fake")) {
            if (!b.isEmpty()) {
                b.append(" / ");
            }
            double[] v = p.switchesPerCall(g);
            b.append(g.equals("direct") ? "–" : String.format("%.2f+%.2f", v[0], v[1]));
        }
        return b.toString();
    }

    /** All context switches (voluntary and involuntary) per call of the process behind a target. */
    private static double switchesPerCall(Map<String, Phase> phases, String gateway) {
        double[] v = phases.get(gateway).switchesPerCall(gateway);
        return v[0] + v[1];
    }

    private static String fmt(double v) {
        return Double.isNaN(v) ? "n/a" : Math.abs(v) >= 100 ? String.format("%,.0f", v) : String.format("%.1f", v);
    }

    /**
     * (edge − direct) ÷ (peer − direct) of one latency; NaN (not measured) when either gateway's figure is below
     * direct's, which only noise makes happen (a tail hit in the direct phase).
     */
    private static double addedRatio(Map<String, Phase> phases, ToDoubleFunction<Result> latency) {
        double direct = latency.applyAsDouble(phases.get("direct").r());
        double peer = latency.applyAsDouble(phases.get("peer").r()) - direct;
        double edge = latency.applyAsDouble(phases.get("edge").r()) - direct;
        return peer <= 0 || edge < 0 ? Double.NaN : edge / peer;
    }

    /** The CPU per call of the process behind a target: the edge JVM, or nginx for the peer. */
    private static double cpuPerCall(Map<String, Phase> phases, String gateway) {
        return phases.get(gateway).perCall(gateway);
    }

    /** A ratio of a round against one of issue 15's targets (or, with a NaN bound, a figure shown beside them). */
    record Check(String name, double value, double bound, boolean atMost) {

        static Check atMost(String name, double value, double bound) {
            return new Check(name, value, bound, true);
        }

        static Check atLeast(String name, double value, double bound) {
            return new Check(name, value, bound, false);
        }

        static Check info(String name, double value) {
            return new Check(name, value, Double.NaN, true);
        }

        boolean target() {
            return !Double.isNaN(bound);
        }

        boolean met() {
            return !Double.isNaN(value) && (atMost ? value <= bound : value >= bound);
        }

        String verdict() {
            return Double.isNaN(value) ? "not measured" : met() ? "met" : "NOT met";
        }

        @Override
        public String toString() {
            String v = Double.isNaN(value) ? "n/a" : String.format("%.2f", value);
            return target() ? String.format("%-42s %8s   target %s %.2f: %s", name, v, atMost ? "≤" : "≥", bound, verdict())
                    : String.format("%-42s %8s   (no target)", name, v);
        }
    }

    /** The median over the rounds of each same-round ratio (NaN rounds left out), against its target. */
    private static void printMedians(List<List<Check>> rounds) {
        System.out.printf("%nmedians of the same-round ratios over %d rounds:%n", rounds.size());
        for (int i = 0; i < rounds.getFirst().size(); i++) {
            Check first = rounds.getFirst().get(i);
            int index = i;
            double[] values = rounds.stream().mapToDouble(r -> r.get(index).value()).filter(v -> !Double.isNaN(v)).sorted().toArray();
            double median = values.length == 0 ? Double.NaN
                    : values.length % 2 == 1 ? values[values.length / 2] : (values[values.length / 2 - 1] + values[values.length / 2]) / 2;
            // A median of fewer than half the rounds is no verdict: the others had a gateway figure below direct's.
            boolean enough = 2 * values.length > rounds.size();
            Check m = new Check(first.name(), enough ? median : Double.NaN, first.bound(), first.atMost());
            System.out.printf("  %s   (%d of %d rounds measurable%s: %s)%n", m, values.length, rounds.size(),
                    enough ? "" : ", too few for a median", Arrays.stream(values).mapToObj(v -> String.format("%.2f", v)).toList());
        }
    }

    /** Issue 4's phases, once, for direct, peer and edge: open loop at three rates, then {@code workers} closed-loop clients. */
    private static void issue4Phases(HttpClient client, Cpu cpu, List<Target> targets, int rate, int seconds, int workers) throws Exception {
        for (int r : new int[] {rate / 4, rate / 2, rate}) {
            System.out.println("open loop at " + r + "/s for " + seconds + " s (JDK HttpClient):");
            Map<String, Phase> phases = new LinkedHashMap<>();
            for (Target t : targets) {
                phases.put(t.name(), print(t, cpu.measure(() -> openLoop(client, t.plain(), r, seconds))));
            }
            printAdded(phases);
        }
        System.out.println("closed loop, " + workers + " workers for " + seconds + " s (JDK HttpClient):");
        Map<String, Phase> closed = new LinkedHashMap<>();
        for (Target t : targets) {
            closed.put(t.name(), print(t, cpu.measure(() -> closedLoop(client, t.plain(), workers, seconds))));
        }
        printAdded(closed);
        System.out.printf("max throughput: direct %.0f/s, peer %.0f/s, edge %.0f/s (%.0f%% of direct); load average %s%n",
                closed.get("direct").callsPerSecond(), closed.get("peer").callsPerSecond(), closed.get("edge").callsPerSecond(),
                100 * closed.get("edge").callsPerSecond() / closed.get("direct").callsPerSecond(), loadAverage());
    }

    private static void printAdded(Map<String, Phase> phases) {
        Result d = phases.get("direct").r();
        for (String g : List.of("peer", "edge")) {
            Result r = phases.get(g).r();
            System.out.printf("  %s added latency p50 %.3f ms, p99 %.3f ms%n", g, (r.p50Micros() - d.p50Micros()) / 1e3,
                    (r.p99Micros() - d.p99Micros()) / 1e3);
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

    private static HttpRequest request(URI uri, String key, String body, String accept) {
        return HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer " + key)
                .header("Content-Type", "application/json")
                .header("Accept", accept)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    /**
     * What a load generator saw: calls (errors included), the calls that did not answer 200, p50 and p99 in µs, the
     * latencies as printed, the CPU of a generator outside this JVM (wrk's; 0 for this JVM's own), and the raw p50 and
     * p99 in µs: the same as p50/p99 for this JVM's histograms; for wrk, from its timed script ({@link Wrk}: wrk's
     * printed percentiles are coordinated-omission corrected), NaN without one.
     */
    record Result(long calls, long errors, double p50Micros, double p99Micros, String latencies, long generatorCpuNanos,
                  double rawP50Micros, double rawP99Micros) {

        /** From this JVM's histogram (ns, errors included at their elapsed time). */
        static Result of(Histogram h, long errors) {
            return new Result(h.getTotalCount(), errors, h.getValueAtPercentile(50) / 1e3, h.getValueAtPercentile(99) / 1e3,
                    String.format("p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f max=%.3f ms", h.getValueAtPercentile(50) / 1e6,
                            h.getValueAtPercentile(90) / 1e6, h.getValueAtPercentile(99) / 1e6, h.getValueAtPercentile(99.9) / 1e6,
                            h.getMaxValue() / 1e6), 0, h.getValueAtPercentile(50) / 1e3, h.getValueAtPercentile(99) / 1e3);
        }

        static Result of(Wrk.Report w) {
            if (w.errors() > 0) {
                failed(w.raw().lines().filter(l -> l.contains("Non-2xx") || l.contains("Socket errors")).map(String::strip)
                        .collect(Collectors.joining("; ")));
            }
            String raw = Double.isNaN(w.rawP50Micros()) ? ""
                    : String.format("; raw p50=%.3f p99=%.3f ms", w.rawP50Micros() / 1e3, w.rawP99Micros() / 1e3);
            return new Result(w.requests(), w.errors(), w.p(50), w.p(99),
                    String.format("p50=%.3f p75=%.3f p90=%.3f p99=%.3f max=%.3f ms (wrk: %.0f/s in %.2f s%s)", w.p(50) / 1e3,
                            w.p(75) / 1e3, w.p(90) / 1e3, w.p(99) / 1e3, w.maxMicros() / 1e3, w.perSecond(), w.seconds(), raw),
                    w.cpuNanos(), w.rawP50Micros(), w.rawP99Micros());
        }
    }

    /**
     * A measured phase: its result, when it started (to cut a JFR recording of the whole run to it), wall time, the
     * CPU each process used in it and its context switches ({@link ContextSwitches}).
     */
    record Phase(Result r, Instant started, long wallNanos, Map<String, Long> cpuNanos, Map<String, ContextSwitches.Delta> switches,
                 long boxBusyNanos, long boxNanos, String failure) {

        long ok() {
            return r.calls() - r.errors();
        }

        /** A process group's CPU per completed call, µs. */
        double perCall(String group) {
            return cpuNanos.getOrDefault(group, 0L) / 1e3 / Math.max(1, ok());
        }

        double callsPerSecond() {
            return ok() / (wallNanos / 1e9);
        }

        /** A process group's voluntary and involuntary context switches per completed call. */
        double[] switchesPerCall(String group) {
            ContextSwitches.Counts c = switches.getOrDefault(group, ContextSwitches.Delta.NONE).total();
            return new double[] {c.voluntary() / (double) Math.max(1, ok()), c.involuntary() / (double) Math.max(1, ok())};
        }

        /**
         * The switches per call of {@code group}'s thread groups with at least 0.05 per call, most first, e.g.
         * {@code ForkJoinPool-#- 2.10+0.03}.
         */
        String threadSwitches(String group) {
            ContextSwitches.Delta d = switches.getOrDefault(group, ContextSwitches.Delta.NONE);
            double calls = Math.max(1, ok());
            return d.byThreadGroup().entrySet().stream()
                    .filter(e -> e.getValue().total() / calls >= 0.05)
                    .sorted((a, b) -> Long.compare(b.getValue().total(), a.getValue().total()))
                    .map(e -> String.format("%s %.2f+%.2f", e.getKey(), e.getValue().voluntary() / calls, e.getValue().involuntary() / calls))
                    .collect(Collectors.joining(", "));
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
            StringBuilder sw = new StringBuilder();
            int ended = 0;
            int born = 0;
            for (Map.Entry<String, ContextSwitches.Delta> e : switches.entrySet()) {
                double[] v = switchesPerCall(e.getKey());
                sw.append(String.format(" %s %.2f+%.2f", e.getKey(), v[0], v[1]));
                ended += e.getValue().threadsEnded();
                born += e.getValue().threadsStarted();
            }
            return String.format("n=%d errors=%d%s %.0f/s %s [%s, %.1f s]%n"
                            + "         CPU us per call:%s; box busy %.0f%% of %d cores (other processes %.0f%%)%n"
                            + "         context switches per call, voluntary+involuntary:%s (threads ended %d, started %d during the phase)",
                    r.calls(), r.errors(), failure == null ? "" : " (first: " + failure + ")", callsPerSecond(), r.latencies(),
                    started(), wallNanos / 1e9, cpu, 100.0 * boxBusyNanos / boxNanos, CORES,
                    100.0 * Math.max(0, boxBusyNanos - ours) / boxNanos, sw, ended, born);
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
            for (String g : List.of("fake", "peer", "edge", "edge-b", "kafka", "redis", "postgres")) {
                if (groups.containsKey(g)) {
                    pids.put(g, all.stream().filter(groups.get(g)).toList());
                }
            }
        }

        /** CPU of the edge JVMs' JIT compiler threads (edge and, in an A/B run, edge-b), a part of their CPU: near 0 once warm. */
        private long jitNanos() {
            long sum = 0;
            for (long pid : Stream.concat(pids.get("edge").stream(), pids.getOrDefault("edge-b", List.of()).stream()).toList()) {
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
         * {@code loadgen=0-1;fake=0-1;peer=2-3;edge=2-3;redis=4;kafka=5;postgres=5} (wrk, started per phase, is not
         * pinned). Empty: nothing is pinned (the default;
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
            LAST_FAILURE.set(null);
            Map<String, List<Long>> measured = new LinkedHashMap<>(pids);
            measured.remove("loadgen");
            ContextSwitches.Sampler switches = new ContextSwitches.Sampler(Path.of("/proc"), measured);
            Map<String, Long> before = snapshot();
            long[] box0 = box();
            Instant started = Instant.now();
            long t0 = System.nanoTime();
            Result r = run.run();
            long wall = System.nanoTime() - t0;
            long[] box1 = box();
            Map<String, Long> after = snapshot();
            Map<String, ContextSwitches.Delta> switched = switches.stop();
            Map<String, Long> used = new LinkedHashMap<>();
            before.forEach((g, v) -> used.put(g, after.get(g) - v));
            if (r.generatorCpuNanos() > 0) {
                used.put("wrk", r.generatorCpuNanos());
            }
            long busy = (box1[0] - box0[0]) * 1_000_000_000L / ticksPerSecond;
            long total = (box1[1] - box0[1]) * 1_000_000_000L / ticksPerSecond;
            return new Phase(r, started, wall, used, switched, busy, total, LAST_FAILURE.getAndSet(null));
        }

        private Map<String, Long> snapshot() {
            Map<String, Long> m = new LinkedHashMap<>();
            pids.forEach((g, list) -> m.put(g, list.stream().mapToLong(this::cpuNanos).sum()));
            m.put(JIT, jitNanos());
            // The kernel's share (stime) of the gateways: system calls, wake-ups and the network stack on their behalf.
            for (String g : List.of("peer", "edge", "edge-b")) {
                if (!pids.containsKey(g)) {
                    continue;
                }
                m.put("(of it " + g + " kernel)", pids.get(g).stream().mapToLong(this::systemNanos).sum());
            }
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

        /** stime of one process (all its threads); 0 once it is gone. */
        private long systemNanos(long pid) {
            try {
                String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
                return Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[12]) * 1_000_000_000L / ticksPerSecond;
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
    static Result sequential(HttpClient client, HttpRequest request, int calls) {
        return oneAtATime(calls, () -> {
            int status = client.send(request, HttpResponse.BodyHandlers.ofByteArray()).statusCode();
            return new Outcome(System.nanoTime(), status == 200);
        });
    }

    /**
     * Streaming calls one at a time: latency from sending to the first bytes of the response's body (the first SSE
     * event), then the rest of the stream is read to its end so that the connection is reused. A call that does
     * not answer 200 with a complete stream counts as an error.
     */
    static Result firstByte(HttpClient client, HttpRequest request, int calls) {
        return oneAtATime(calls, () -> {
            HttpResponse<InputStream> r = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream in = r.body()) {
                int b = in.read();
                long first = System.nanoTime();
                // The rest, to its end: a complete stream ends with OpenAI's "data: [DONE]".
                return new Outcome(first, r.statusCode() == 200 && b >= 0
                        && new String(in.readAllBytes(), StandardCharsets.UTF_8).contains("[DONE]"));
            }
        });
    }

    /** The first failure of the phase being measured (what a failed call threw or answered), for the phase's line. */
    private static final AtomicReference<String> LAST_FAILURE = new AtomicReference<>();

    private static void failed(String what) {
        LAST_FAILURE.compareAndSet(null, what);
    }

    /** When a call's measured latency ended, and whether it succeeded. */
    record Outcome(long endNanos, boolean ok) {
    }

    interface Call {
        Outcome make() throws IOException, InterruptedException;
    }

    /** {@code calls} calls one after the other (at most 120 s); a call that throws counts as an error at its elapsed time. */
    private static Result oneAtATime(int calls, Call call) {
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(30), 3);
        long errors = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        for (int i = 0; i < calls && System.nanoTime() < deadline; i++) {
            long t0 = System.nanoTime();
            Outcome o;
            try {
                o = call.make();
            } catch (IOException e) {
                o = new Outcome(System.nanoTime(), false);
                failed(e.toString());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            h.recordValue(Math.min(o.endNanos() - t0, h.getHighestTrackableValue()));
            if (!o.ok()) {
                errors++;
                failed("an answer not 200, or an incomplete stream");
            }
        }
        return Result.of(h, errors);
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
                    failed(t != null ? t.toString() : "HTTP " + r.statusCode());
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
            return Result.of(h.copy(), errors.get());
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
                            failed(e.toString());
                        }
                        long latency = System.nanoTime() - t0;
                        synchronized (h) {
                            h.recordValue(Math.min(latency, h.getHighestTrackableValue()));
                        }
                        if (status != 200) {
                            errors.incrementAndGet();
                            failed("HTTP " + status);
                        }
                    }
                });
            }
        }
        return Result.of(h, errors.get());
    }
}
