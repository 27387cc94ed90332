package dev.tokenmeter.local;

import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.kafka.EmbeddedKafkaCluster;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.redis.EmbeddedRedisCluster;
import dev.tokenmeter.testkit.redis.EmbeddedRedisEngine;

import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * {@code ./run-pipeline}: the whole pipeline on one machine with nothing but a JDK.
 *
 * <ol>
 *   <li>starts real engines (Kafka KRaft broker, Redis, Postgres) on free ports and the fake OpenAI upstream;</li>
 *   <li>creates the topics and migrates the database, like the deployment's init step;</li>
 *   <li>starts the edge, the aggregator and the billing sink, each in its own JVM from its plain {@code main};</li>
 *   <li>seeds demo plans, users and keys ({@link DemoData});</li>
 *   <li>drives demo traffic through the edge ({@link DemoTraffic}) with a progress bar;</li>
 *   <li>waits for the pipeline to drain, prints every demo user's statement and the reconciliation, and
 *       exits 0 only if every total reconciles to the nano-dollar and every call has exactly one event.</li>
 * </ol>
 */
public final class LocalStack {

    /** System property naming the launcher's work directory (logs, spool, state); {@code .local-stack} by default. */
    static final String WORK_DIR_PROPERTY = "local-stack.dir";
    /** Longest a Ctrl+C waits for the stack to close: the edge's grace (60 s), the others' and the engines'. */
    private static final Duration CLOSE_TIMEOUT = Duration.ofMinutes(3);

    private LocalStack() {
    }

    public static void main(String[] args) throws Exception {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        PrintStream out = System.out;
        // Every run starts new engines, so state kept by an earlier run (aggregator stores, edge spool)
        // belongs to a cluster that no longer exists: start from an empty work directory.
        Path workDir = Path.of(System.getProperty(WORK_DIR_PROPERTY, ".local-stack"));
        deleteRecursively(workDir);
        Files.createDirectories(workDir);
        out.println("tokenmeter local stack — logs in " + workDir.toAbsolutePath());

        boolean ok = false;
        CountDownLatch closed = new CountDownLatch(1);
        try {
            try (Engines engines = options.cluster()
                         ? Engines.create(Backend.EMBEDDED, EmbeddedKafkaCluster::launch) : Engines.create(Backend.EMBEDDED);
                 // --cluster: the edge's quota in a 3 x 1 Redis Cluster (REDIS_URI=redis-cluster://..., ADR 0080)
                 EmbeddedRedisCluster redisCluster = options.cluster() ? EmbeddedRedisCluster.launch(3, 1) : null;
                 // Issue 19: the edge's response cache in its own Redis, as deployed (ADR 0074): bounded, evicting.
                 EmbeddedRedisEngine cacheRedis = EmbeddedRedisEngine.launch(List.of("maxmemory 64mb", "maxmemory-policy allkeys-lru"));
                 // Issue 16: the fake's Usage and Costs APIs report the calls on the edge's own key only.
                 FakeOpenAi upstream = FakeOpenAi.builder().organizationKeys(java.util.Set.of(Stack.DEMO_SERVICE_KEY)).build();
                 // Issue 17: the demo traffic's labels are rolled up per feature and customer; --cluster: the edge's quota
                 // in the Redis Cluster.
                 Stack stack = Stack.start(engines, upstream, workDir, out, "", (service, env) -> {
                     if (service.startsWith("aggregator")) {
                         env.put("ROLLUP_DIMENSIONS", DemoControls.ROLLUP_DIMENSIONS);
                     }
                     if (redisCluster != null && Stack.EDGE_JAR.equals(service)) {
                         env.put("REDIS_URI", redisCluster.uri());
                     }
                     if (Stack.EDGE_JAR.equals(service)) {
                         env.put("RESPONSE_CACHE_REDIS_URI", cacheRedis.uri());
                     }
                     if (service.equals(Stack.SINK_JAR)) {
                         env.putAll(UpstreamCheck.sinkEnv(upstream));
                     }
                 });
                 // Issue 17: alerts that arrive. erin (tenant initech) crosses 50/80/100 % of her credit.
                 DemoWebhook webhook = DemoWebhook.register(stack.startNotifier(out), DemoData.ALERTING_TENANT, out)) {
                if (redisCluster != null) {
                    out.println("cluster     Kafka: 3 brokers + 1 controller, topics RF 3, min.insync.replicas 2; the edge's"
                            + " Redis: a Redis Cluster of " + redisCluster.masters().size() + " masters with 1 replica each, "
                            + redisCluster.nodes().size() + " nodes from port " + redisCluster.nodes().get(0).port()
                            + " (password not printed)");
                }

                if (options.cluster()) {
                    stack.startSecondInstances(out);
                }
                DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                        stack.kafka(), stack.topics());
                out.println("seeded " + demo.callers().size() + " demo users");
                DemoControls controls = new DemoControls(stack);
                controls.apply(out);

                out.printf("driving traffic for %ss at %d req/s through %s%n", options.duration().toSeconds(),
                        options.ratePerSecond(), stack.edgeUrls().stream().map(URI::toString).collect(java.util.stream.Collectors.joining(" and ")));
                DemoTraffic traffic = new DemoTraffic(stack.edgeUrls(), demo.callers());
                DemoTraffic.Report report = traffic.run(options.duration(), options.ratePerSecond(), options.seed(), System.err);
                if (stack.edgeUrls().size() > 1) {
                    out.println("calls per edge: " + stack.edgeUrls().stream()
                            .map(u -> u + " " + traffic.sentByEdge.getOrDefault(u, new java.util.concurrent.atomic.LongAdder()).sum())
                            .collect(java.util.stream.Collectors.joining(", ")));
                }
                out.println("responses by status: " + report.byStatus()
                        + (report.transportErrors() > 0 ? " (transport errors: " + report.transportErrors() + ")" : ""));
                DemoTraffic.Caller cacheCaller = demo.callers().stream()
                        .filter(c -> c.userId().equals(DemoControls.PROJECT_USER)).findFirst().orElseThrow();
                DemoRedisFront.Outcome front = new DemoRedisFront(stack.edgeUrls(), cacheCaller).run(options.seed(), out);
                report = report.plus(front.report());
                DemoMedia.Outcome media = new DemoMedia(stack.edgeUrls().get(0), cacheCaller).run(out);
                report = report.plus(media.report());

                Reconciliation reconciliation = new Reconciliation(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
                boolean drained = reconciliation.awaitDrained(report, Duration.ofMinutes(3), out);

                YearMonth month = YearMonth.now(ZoneOffset.UTC);
                try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())) {
                    for (DemoTraffic.Caller caller : demo.callers()) {
                        out.println();
                        out.println("Statement " + month + " for " + caller.userId() + " (" + demo.describe(caller.userId()) + ")");
                        SqlReport.print(db, out, Reconciliation.STATEMENT_SQL, caller.userId(), month.atDay(1));
                        SqlReport.print(db, out, Reconciliation.STATEMENT_TOTAL_SQL, caller.userId(), month.atDay(1));
                    }
                    out.println();
                    out.println("Cost by service tier " + month + " (the tier each call was billed at, ADR 0068)");
                    SqlReport.print(db, out, Reconciliation.COST_BY_TIER_SQL, month.atDay(1));
                    out.println();
                    out.println("Reconciliation " + month + " (ledger vs monthly total vs sum of hourly totals)");
                    SqlReport.print(db, out, Reconciliation.RECONCILIATION_SQL, month.atDay(1));
                }
                boolean upstreamReconciled = new UpstreamCheck(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())
                        .awaitAndPrint(Duration.ofSeconds(30), out);
                DemoAlerts.print(stack, webhook, Duration.ofSeconds(60), out);
                boolean rollupsReconciled = controls.report(out, cacheCaller);
                boolean splitOk = true;
                if (options.cluster()) {
                    // Two instances of each consumer: Kafka must have given each of them partitions.
                    // The sink's loops are groups of their own (<group>-ledger, -totals, -rollups); the ledger's is shown.
                    for (String group : List.of(stack.aggregatorGroupId(), stack.sinkGroupId() + "-ledger")) {
                        Map<String, Integer> members = stack.partitionsPerMember(group);
                        out.println("consumer group " + group + ": " + members.size() + " members, partitions per member "
                                + members.values());
                        splitOk &= members.size() == 2 && members.values().stream().allMatch(n -> n > 0);
                    }
                }
                Reconciliation.Verdict verdict = reconciliation.verdict(report);
                out.println();
                verdict.lines().forEach(out::println);
                if (!splitOk) {
                    out.println("FAIL: --cluster runs two aggregators and two sinks, and each must hold partitions");
                }
                if (!front.ok()) {
                    out.println("FAIL: the response cache or the async jobs did not answer as their rules say (see 'Redis in front')");
                }
                if (!media.ok()) {
                    out.println("FAIL: a media call was not answered and billed (see 'media calls')");
                }
                ok = drained && verdict.ok() && rollupsReconciled && upstreamReconciled && front.ok() && media.ok() && splitOk;
                out.println(ok ? "RECONCILED: every total matches to the nano-dollar." : "NOT RECONCILED: see above.");

                if (options.keepRunning()) {
                    stack.printHowToUse(out, demo);
                    out.println("Press Ctrl+C to stop.");
                    CountDownLatch stop = new CountDownLatch(1);
                    // Ctrl+C: the JVM ends as soon as its shutdown hooks have, so this one waits until the stack and
                    // the engines are closed and their directories removed (the finally below counts `closed` down).
                    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                        stop.countDown();
                        awaitQuietly(closed, CLOSE_TIMEOUT);
                    }, "local-stack-stop"));
                    stop.await();
                }
            }
        } finally {
            closed.countDown();
        }
        // Exit only after every service and engine above has been shut down.
        System.exit(ok ? 0 : 1);
    }

    private static void awaitQuietly(CountDownLatch latch, Duration timeout) {
        try {
            latch.await(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void deleteRecursively(Path dir) throws java.io.IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
