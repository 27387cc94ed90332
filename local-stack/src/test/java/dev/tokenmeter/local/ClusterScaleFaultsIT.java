package dev.tokenmeter.local;

import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 18's cluster drill, steps 3 and 4 (ADR 0089; Maven profile {@code faults}): the services from their shipped
 * jars under steady demo load through the edge, instances added and removed as an operator would, then the usual
 * exact checks ({@link Reconciliation}: every event id the edge returned is in the ledger exactly once, ledger =
 * monthly = sum of hourly per user, model and key source, to the nano-dollar, the reconciliation view all zero).
 * <p>
 * One Kafka broker and one Redis on purpose: these steps exercise the services' instances (consumer group rebalances
 * under EOS, an edge's spool), not the engines' replication, which steps 1 and 2 drill ({@code KafkaClusterFaultsIT},
 * {@code RedisFailoverFaultsIT}). Each step's figures go to {@code target/fault-figures-scale.md}.
 */
@ExtendWith(EnginesExtension.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterScaleFaultsIT {

    private static final int RATE_PER_SECOND = 15;
    private static final Path FIGURES = Path.of("target", "fault-figures-scale.md");
    private static final Duration SETTLE_TIMEOUT = Duration.ofMinutes(3);
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    @BeforeAll
    static void beginFigures() throws IOException {
        Files.createDirectories(FIGURES.toAbsolutePath().getParent());
        Files.writeString(FIGURES, String.format("# Cluster drill steps 3 and 4: figures%n%nRun at %s, %d calls/s of demo"
                + " traffic, the services from their shipped jars, one Kafka broker, one Redis (ClusterScaleFaultsIT).%n",
                Instant.now(), RATE_PER_SECOND));
    }

    /** What one scale step measured. */
    private record ScaleStep(String label, Duration action, Duration rebalancePause, Duration zeroLag, long answeredBefore,
                             String stops) {
        String row() {
            return String.format(Locale.ROOT, "| %s | %.1f s | %.1f s | %.1f s | %,d | %s |", label, secs(action),
                    secs(rebalancePause), secs(zeroLag), answeredBefore, stops);
        }
    }

    /**
     * Step 3: aggregator instances 2 → 3 → 1, then sink instances 2 → 1 → 2, under 15 calls/s. A scale-down is a
     * SIGTERM (graceful stop). For each step: the rebalance pause, from the scale action until every group of the
     * service is Stable with every partition assigned and its members exactly the running instances (Admin
     * describeConsumerGroups), and the time back to zero lag, from the scale action until the ledger holds every call
     * answered before it.
     */
    @Test
    @Order(3)
    void aggregatorsAndSinksScaledUpAndDownUnderLoad_billEveryCallOnce(Engines engines, @TempDir Path workDir) throws Exception {
        String prefix = Names.unique("scl") + ".";
        List<ScaleStep> steps = new ArrayList<>();
        try (FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix)) {
            stack.startInstance(Stack.AGGREGATOR_JAR, System.out);
            stack.startInstance(Stack.SINK_JAR, System.out);
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(), stack.kafka(),
                    stack.topics(), prefix);
            Reconciliation reconciliation = new Reconciliation(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
            DemoTraffic traffic = new DemoTraffic(stack.edgeUrl(), demo.callers());
            CompletableFuture<DemoTraffic.Report> load = startLoad(traffic, 31);
            try {
                await("both aggregators and both sinks settled, the ledger filling").atMost(SETTLE_TIMEOUT)
                        .pollInterval(Duration.ofMillis(500))
                        .until(() -> settled(stack, Stack.AGGREGATOR_JAR) && settled(stack, Stack.SINK_JAR)
                                && reconciliation.ledgerRows() >= RATE_PER_SECOND * 5L);

                steps.add(scale(stack, traffic, "aggregator 2 → 3", Stack.AGGREGATOR_JAR, () -> {
                    stack.startInstance(Stack.AGGREGATOR_JAR, System.out);
                    return "";
                }));
                steps.add(scale(stack, traffic, "aggregator 3 → 1", Stack.AGGREGATOR_JAR, () -> stop(stack, Stack.AGGREGATOR_JAR)));
                steps.add(scale(stack, traffic, "sink 2 → 1", Stack.SINK_JAR, () -> stop(stack, Stack.SINK_JAR)));
                steps.add(scale(stack, traffic, "sink 1 → 2", Stack.SINK_JAR, () -> {
                    stack.startInstance(Stack.SINK_JAR, System.out);
                    return "";
                }));
            } finally {
                traffic.stop();
            }
            DemoTraffic.Report report = load.get();
            boolean drained = reconciliation.awaitDrained(report, Duration.ofMinutes(4), System.out);
            Reconciliation.Verdict verdict = reconciliation.verdict(report);
            StringBuilder figures = new StringBuilder(String.format(Locale.ROOT, "%n## Step 3: aggregators 2 → 3 → 1, sinks"
                    + " 2 → 1 → 2%n%n%,d calls, by status %s, transport errors %d; %s.%n%n| step | scale action took |"
                    + " rebalance pause | back to zero lag | calls answered before | stopped (exit code, took) |%n"
                    + "|---|---|---|---|---|---|%n", report.sent(), FaultFigures.byStatus(report.byStatus()),
                    report.transportErrors(), !drained ? "NOT drained" : verdict.ok() ? "reconciled exactly" : "NOT reconciled"));
            steps.forEach(s -> figures.append(s.row()).append('\n'));
            verdict.lines().forEach(l -> figures.append("\n    ").append(l));
            Files.writeString(FIGURES, figures.append('\n'), StandardOpenOption.APPEND);
            steps.forEach(s -> System.out.println("ClusterScaleFaultsIT step: " + s.row()));
            verdict.lines().forEach(l -> System.out.println("ClusterScaleFaultsIT: " + l));

            assertThat(steps).as("four scale steps, each measured").hasSize(4);
            assertThat(stack.instanceNumbers(Stack.AGGREGATOR_JAR)).as("aggregators left running").containsExactly(1);
            assertThat(stack.instanceNumbers(Stack.SINK_JAR)).as("sinks left running").containsExactly(1, 3);
            assertThat(drained).as("pipeline drained after the scale steps\n" + String.join("\n", verdict.lines())).isTrue();
            assertThat(verdict.ok()).as(String.join("\n", verdict.lines())).isTrue();
            assertThat(report.eventIds()).as("the edge kept answering calls through the steps")
                    .hasSizeGreaterThan(RATE_PER_SECOND * 60);
        }
    }

    /**
     * Step 4: two edges behind the load generator (a call an edge refuses moves to the other). The Kafka broker is
     * stopped so both edges spool; edge 1 is SIGKILLed while its spool holds records; Kafka comes back and the load
     * goes on through edge 2; edge 1 restarts from its jar with the same SPOOL_DIR and replays its spool: every call
     * edge 1 answered before the kill is then in the ledger exactly once. Measured: calls moved, records replayed, time
     * to replay.
     */
    @Test
    @Order(4)
    void anEdgeKilledWithAnUnsentSpool_replaysItOnRestart(Engines engines, @TempDir Path workDir) throws Exception {
        String prefix = Names.unique("spk") + ".";
        try (FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix)) {
            stack.startInstance(Stack.EDGE_JAR, System.out);
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(), stack.kafka(),
                    stack.topics(), prefix);
            Reconciliation reconciliation = new Reconciliation(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
            java.net.URI edge1 = stack.edgeUrl(1);
            Path spool1 = stack.spoolDir(1);
            ChildJvm edge1Jvm = stack.instance(Stack.EDGE_JAR, 1);
            DemoTraffic traffic = new DemoTraffic(List.of(edge1, stack.edgeUrl(2)), demo.callers());
            CompletableFuture<DemoTraffic.Report> load = startLoad(traffic, 47);
            Set<String> edge1AnsweredBeforeKill;
            SpoolContents atKill;
            Duration edge1Ready;
            Duration replayed;
            Duration spoolEmpty;
            long movedWhileDown;
            long inLedgerBeforeRestart;
            boolean kafkaStopped = false;
            try {
                await("the ledger filling through both edges").atMost(SETTLE_TIMEOUT).pollInterval(Duration.ofMillis(500))
                        .until(() -> reconciliation.ledgerRows() >= RATE_PER_SECOND * 5L);
                System.out.println("stopping the Kafka broker: both edges spool");
                engines.kafka().stop();
                kafkaStopped = true;
                long stopped = System.nanoTime();
                // A good number of records, written seconds after the switch to spooling (SPOOL_SEND_TIMEOUT 2 s moved
                // every unacknowledged event there), each fsync'd before its call was answered.
                await("edge 1's spool holds records").atMost(Duration.ofMinutes(1)).pollInterval(Duration.ofMillis(250))
                        .until(() -> SpoolContents.of(spool1).records() >= 3L * RATE_PER_SECOND);
                System.out.printf("edge 1's spool holds %d records %.1f s after Kafka stopped; SIGKILL edge 1 (pid %d)%n",
                        SpoolContents.of(spool1).records(), (System.nanoTime() - stopped) / 1e9, edge1Jvm.pid());
                edge1Jvm.kill();
                long killed = System.nanoTime();
                Set<String> answered = new HashSet<>(traffic.answeredIdsByEdge.get(edge1));
                answered.removeAll(traffic.brokenAnswerIds);
                edge1AnsweredBeforeKill = answered;
                atKill = SpoolContents.of(spool1);
                assertThat(atKill.records()).as("records in edge 1's spool at the kill").isPositive();
                assertThat(atKill.bytes()).as("bytes in edge 1's spool at the kill").isPositive();
                long movedAtKill = traffic.movedCalls.sum();

                engines.kafka().start();
                kafkaStopped = false;
                System.out.println("Kafka is back; the load goes on through edge 2");
                await("calls refused by the dead edge 1 move to edge 2").atMost(Duration.ofMinutes(1))
                        .pollInterval(Duration.ofMillis(250)).until(() -> traffic.movedCalls.sum() - movedAtKill >= 5L * RATE_PER_SECOND);
                inLedgerBeforeRestart = inLedger(stack, edge1AnsweredBeforeKill);
                System.out.printf("edge 1 down %.1f s; %d of the %d calls it answered are in the ledger; restarting it%n",
                        (System.nanoTime() - killed) / 1e9, inLedgerBeforeRestart, edge1AnsweredBeforeKill.size());
                long restart = System.nanoTime();
                edge1Jvm.start();
                stack.awaitEdgeReady(SETTLE_TIMEOUT);
                edge1Ready = Duration.ofNanos(System.nanoTime() - restart);
                movedWhileDown = traffic.movedCalls.sum() - movedAtKill;
                await("the ledger holds every call edge 1 answered before the kill").atMost(SETTLE_TIMEOUT)
                        .pollInterval(Duration.ofMillis(250))
                        .until(() -> inLedger(stack, edge1AnsweredBeforeKill) >= edge1AnsweredBeforeKill.size());
                replayed = Duration.ofNanos(System.nanoTime() - restart);
                await("edge 1's spool empty after its replay").atMost(SETTLE_TIMEOUT).pollInterval(Duration.ofMillis(250))
                        .until(() -> SpoolContents.of(spool1).records() == 0);
                spoolEmpty = Duration.ofNanos(System.nanoTime() - restart);
                long answeredAfterRestart = answeredBy(traffic, edge1);
                await("edge 1 answers calls again").atMost(Duration.ofMinutes(1)).pollInterval(Duration.ofMillis(250))
                        .until(() -> answeredBy(traffic, edge1) >= answeredAfterRestart + 3L * RATE_PER_SECOND);
            } finally {
                traffic.stop();
                if (kafkaStopped) {
                    engines.kafka().start(); // the engines are shared with the other fault tests
                }
            }
            DemoTraffic.Report sent = load.get();
            // A call under way on edge 1 when it was killed has its id in the headers but no whole answer: not answered.
            Set<String> answeredIds = new HashSet<>(sent.eventIds());
            Set<String> broken = new HashSet<>(traffic.brokenAnswerIds);
            answeredIds.removeAll(broken);
            DemoTraffic.Report report = new DemoTraffic.Report(sent.sent(), sent.byStatus(), sent.byUserAndStatus(),
                    Set.copyOf(answeredIds), sent.transportErrors());
            boolean drained = reconciliation.awaitDrained(report, Duration.ofMinutes(4), System.out);
            Reconciliation.Verdict verdict = reconciliation.verdict(report);
            long edge1Rows = inLedger(stack, edge1AnsweredBeforeKill);
            long edge1Distinct = distinctInLedger(stack, edge1AnsweredBeforeKill);
            String figures = String.format(Locale.ROOT, "%n## Step 4: an edge SIGKILLed with an unsent spool%n%n%,d calls over"
                            + " two edges, by status %s, transport errors %d, answers broken off by the kill %d; %s.%n%n"
                            + "| calls moved to edge 2 (edge 1 refused) | edge 1's spool at the kill | calls edge 1 answered"
                            + " before the kill | of them in the ledger before the restart | after the replay | edge 1 ready"
                            + " after restart | ledger complete after restart | spool empty after restart |%n"
                            + "|---|---|---|---|---|---|---|---|%n"
                            + "| %,d | %,d records, %,d bytes | %,d | %,d | %,d rows, %,d distinct | %.1f s | %.1f s | %.1f s |%n",
                    sent.sent(), FaultFigures.byStatus(sent.byStatus()), sent.transportErrors(), broken.size(),
                    !drained ? "NOT drained" : verdict.ok() ? "reconciled exactly" : "NOT reconciled", movedWhileDown,
                    atKill.records(), atKill.bytes(), edge1AnsweredBeforeKill.size(), inLedgerBeforeRestart, edge1Rows, edge1Distinct,
                    secs(edge1Ready), secs(replayed), secs(spoolEmpty));
            StringBuilder all = new StringBuilder(figures);
            verdict.lines().forEach(l -> all.append("\n    ").append(l));
            Files.writeString(FIGURES, all.append('\n'), StandardOpenOption.APPEND);
            System.out.println("ClusterScaleFaultsIT step 4:" + all);

            assertThat(edge1Rows).as("ledger rows of the calls edge 1 answered before the kill: each exactly once")
                    .isEqualTo(edge1AnsweredBeforeKill.size());
            assertThat(edge1Distinct).isEqualTo(edge1AnsweredBeforeKill.size());
            assertThat(movedWhileDown).as("calls moved to edge 2 while edge 1 was down").isPositive();
            assertThat(inLedgerBeforeRestart).as("calls edge 1 answered that only its spool held until the restart")
                    .isLessThan(edge1AnsweredBeforeKill.size());
            assertThat(drained).as("pipeline drained after the replay\n" + String.join("\n", verdict.lines())).isTrue();
            assertThat(verdict.ok()).as(String.join("\n", verdict.lines())).isTrue();
        }
    }

    /** The records and bytes in an edge's spool segments (whole records only: a torn tail is cut at the next start). */
    private record SpoolContents(long records, long bytes) {
        static SpoolContents of(Path spoolDir) throws IOException {
            if (!Files.isDirectory(spoolDir)) {
                return new SpoolContents(0, 0);
            }
            long records = 0;
            long bytes = 0;
            try (var files = Files.list(spoolDir)) {
                for (Path segment : files.filter(f -> f.getFileName().toString().matches("spool-\\d+\\.seg")).toList()) {
                    java.nio.ByteBuffer data;
                    try {
                        data = java.nio.ByteBuffer.wrap(Files.readAllBytes(segment));
                    } catch (java.nio.file.NoSuchFileException deleted) {
                        continue; // replayed and deleted meanwhile
                    }
                    bytes += data.limit();
                    // [int length][int crc32c][payload], as edge-service's SpoolRecords writes them
                    while (data.remaining() >= 8) {
                        int length = data.getInt();
                        data.getInt();
                        if (length < 0 || length > data.remaining()) {
                            break;
                        }
                        data.position(data.position() + length);
                        records++;
                    }
                }
            }
            return new SpoolContents(records, bytes);
        }
    }

    private static long answeredBy(DemoTraffic traffic, java.net.URI edge) {
        Set<String> ids = traffic.answeredIdsByEdge.get(edge);
        return ids == null ? 0 : ids.size();
    }

    private static long distinctInLedger(Stack stack, Set<String> eventIds) throws SQLException {
        try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
             PreparedStatement q = db.prepareStatement(
                     "SELECT count(DISTINCT event_id) FROM usage_ledger WHERE event_id = ANY (?::uuid[])")) {
            q.setArray(1, db.createArrayOf("text", eventIds.toArray()));
            try (ResultSet rs = q.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    /** Stops every running instance of a service but the first, all at once (SIGTERM); says how each stop went. */
    private static String stop(Stack stack, String service) {
        // Own threads: the common pool may have a single worker, and the load holds it.
        try (ExecutorService stopping = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<String>> stops = stack.instanceNumbers(service).stream().filter(n -> n != 1)
                    .map(n -> stopping.submit(() -> {
                        ChildJvm.Stopped stopped = stack.stopInstance(service, n);
                        return String.format(Locale.ROOT, "%s %d: exit %d, %.1f s%s", service, n, stopped.exitCode(),
                                secs(stopped.took()), stopped.killed() ? ", SIGKILLed after the grace period" : "");
                    })).toList();
            List<String> how = new ArrayList<>();
            for (Future<String> stop : stops) {
                how.add(stop.get());
            }
            return String.join("; ", how);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException("stopping " + service, e.getCause());
        }
    }

    /**
     * One scale step: runs {@code action}, then measures from its start the time until the service's groups are
     * settled on the running instances and the time until the ledger holds every call answered before it.
     */
    private static ScaleStep scale(Stack stack, DemoTraffic traffic, String label, String service, Supplier<String> action) {
        Set<String> answeredBefore = answeredSoFar(traffic);
        System.out.println("scale step " + label + " with " + answeredBefore.size() + " calls answered so far");
        long t0 = System.nanoTime();
        String stops = action.get();
        Duration took = Duration.ofNanos(System.nanoTime() - t0);
        await(label + ": the " + service + " groups Stable on the running instances, every partition assigned")
                .atMost(SETTLE_TIMEOUT).pollInterval(Duration.ofMillis(250))
                .until(() -> settled(stack, service));
        Duration pause = Duration.ofNanos(System.nanoTime() - t0);
        await(label + ": the ledger holds every call answered before the step").atMost(SETTLE_TIMEOUT)
                .pollInterval(Duration.ofMillis(250)).until(() -> inLedger(stack, answeredBefore) == answeredBefore.size());
        Duration zeroLag = Duration.ofNanos(System.nanoTime() - t0);
        ScaleStep step = new ScaleStep(label, took, pause, zeroLag, answeredBefore.size(), stops.isEmpty() ? "-" : stops);
        System.out.println("ClusterScaleFaultsIT " + step.row());
        return step;
    }

    /** The consumer groups of a service: the aggregator's application id; the sink's three loops' groups. */
    private static List<String> groups(Stack stack, String service) {
        return Stack.AGGREGATOR_JAR.equals(service) ? List.of(stack.aggregatorGroupId())
                : List.of(stack.sinkGroupId() + "-ledger", stack.sinkGroupId() + "-totals", stack.sinkGroupId() + "-rollups");
    }

    private static boolean settled(Stack stack, String service) {
        List<String> ids = stack.instanceNumbers(service).stream().map(n -> stack.instanceId(service, n)).toList();
        return stack.groupStatus(groups(stack, service)).values().stream().allMatch(g -> g.settledOn(ids));
    }

    /** Every event id answered so far by any edge, but answers broken off on the way. */
    private static Set<String> answeredSoFar(DemoTraffic traffic) {
        Set<String> ids = new HashSet<>();
        traffic.answeredIdsByEdge.values().forEach(ids::addAll);
        ids.removeAll(traffic.brokenAnswerIds);
        return ids;
    }

    /** Ledger rows of these event ids (each id once when all is well). */
    private static long inLedger(Stack stack, Set<String> eventIds) throws SQLException {
        try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
             PreparedStatement q = db.prepareStatement("SELECT count(*) FROM usage_ledger WHERE event_id = ANY (?::uuid[])")) {
            q.setArray(1, db.createArrayOf("text", eventIds.toArray()));
            try (ResultSet rs = q.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    private static CompletableFuture<DemoTraffic.Report> startLoad(DemoTraffic traffic, long seed) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                // Long enough for any run; the drill ends it (DemoTraffic.stop) when its steps are done.
                return traffic.run(Duration.ofMinutes(20), RATE_PER_SECOND, seed, QUIET);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }, command -> Thread.ofPlatform().name("demo-load").daemon().start(command));
    }

    private static double secs(Duration d) {
        return d.toMillis() / 1000.0;
    }
}
