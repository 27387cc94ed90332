package dev.tokenmeter.local;

import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.kafka.EmbeddedKafkaCluster;
import dev.tokenmeter.testkit.kafka.EmbeddedKafkaEngine;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * Fault drills under steady load through the edge: the same final checks after each (ledger = hourly =
 * monthly, zero duplicate event ids, every call the edge answered has exactly one event). Used by the
 * end-to-end fault suite and runnable by hand against a local stack.
 */
public final class FaultDrill {

    public enum Scenario {
        /** The aggregator and the sink, each in its own JVM, SIGKILLed and restarted three times each. */
        KILL_AGGREGATOR_AND_SINK(Duration.ofSeconds(60), "aggregator + sink SIGKILLed 3× each"),
        /** The Kafka broker stopped for 60 s and restarted; the edge keeps serving and its spool drains. */
        KAFKA_OUTAGE(Duration.ofSeconds(100), "Kafka broker stopped"),
        /** Redis stopped and restarted; the declared fail policy holds, counters are rebuilt afterwards. */
        REDIS_OUTAGE(Duration.ofSeconds(45), "Redis stopped"),
        /** Postgres stopped and restarted; the sink pauses and retries, nothing is lost. */
        POSTGRES_OUTAGE(Duration.ofSeconds(45), "Postgres stopped"),
        /**
         * Needs a three-broker cluster (issue 18, ADR 0084): one broker SIGKILLed and restarted, then the broker leading
         * most partitions of the usage events topic; each kill's time back to zero lag is in {@link #steps()}.
         */
        KAFKA_BROKER_KILLS(Duration.ofSeconds(100), "Kafka broker SIGKILLed, then the leaders' broker (3 brokers, RF 3)");

        final Duration load;
        /** How the fault table (BENCHMARKS.md, {@link FaultFigures}) names it. */
        final String label;

        Scenario(Duration load, String label) {
            this.load = load;
            this.label = label;
        }
    }

    /**
     * @param variant what else the run varied (the edge's QUOTA_FAILURE_POLICY for REDIS_OUTAGE), or "" for none
     * @param duringFault calls answered while the fault lasted, by status (answers that arrived between stop and start)
     */
    public record Result(Scenario scenario, String variant, DemoTraffic.Report traffic, Reconciliation.Verdict verdict,
                         boolean drained, Duration faultDuration, Duration recovery, long maxBacklogEvents,
                         Map<Integer, Long> duringFault) {
        public boolean ok() {
            return drained && verdict.ok();
        }

        /** The scenario's name in the fault table, with its variant. */
        String label() {
            return variant.isEmpty() ? scenario.label : scenario.label + ", " + variant;
        }

        long duringFault(int status) {
            return duringFault.getOrDefault(status, 0L);
        }

        String describe() {
            return String.format("scenario %s: calls %d, by status %s, fault lasted %ds (answered meanwhile %s), ledger"
                            + " caught up %.1fs after restore, max backlog %d events, drained %s, reconciled %s",
                    variant.isEmpty() ? scenario : scenario + " " + variant, traffic.sent(), traffic.byStatus(),
                    faultDuration.toSeconds(), duringFault, recovery.toMillis() / 1000.0, maxBacklogEvents, drained, verdict.ok());
        }
    }

    private final Stack stack;
    private final Engines engines;
    private final PrintStream out;
    private final List<String> steps = new ArrayList<>();

    public FaultDrill(Stack stack, Engines engines, PrintStream out) {
        this.stack = stack;
        this.engines = engines;
        this.out = out;
    }

    public Result run(Scenario scenario, int ratePerSecond, DemoData.Seeded demo, Path reportFile) throws Exception {
        return run(scenario, "", scenario.load, ratePerSecond, demo, reportFile);
    }

    /** One drill with {@code load} of traffic instead of the scenario's; {@code variant} only names the run. */
    public Result run(Scenario scenario, String variant, Duration loadDuration, int ratePerSecond, DemoData.Seeded demo,
                      Path reportFile) throws Exception {
        Reconciliation reconciliation = new Reconciliation(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
        DemoTraffic traffic = new DemoTraffic(stack.edgeUrl(), demo.callers());
        CompletableFuture<DemoTraffic.Report> load = CompletableFuture.supplyAsync(() -> {
            try {
                return traffic.run(loadDuration, ratePerSecond, 11, new PrintStream(java.io.OutputStream.nullOutputStream()));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        });
        Backlog backlog = new Backlog(traffic);
        Stack.pause(Duration.ofSeconds(8));
        Instant faultStart = Instant.now();
        Map<Integer, Long> beforeFault = snapshot(traffic.liveByStatus);
        switch (scenario) {
            case KILL_AGGREGATOR_AND_SINK -> {
                for (int round = 1; round <= 3; round++) {
                    for (ChildJvm victim : new ChildJvm[] {stack.aggregator, stack.sink}) {
                        out.println("SIGKILL " + victim.name() + " (round " + round + ", pid " + victim.pid() + ")");
                        victim.kill();
                        backlog.watch(Duration.ofSeconds(2));
                        victim.start();
                        backlog.watch(Duration.ofSeconds(5));
                    }
                }
            }
            case KAFKA_OUTAGE -> hold("kafka broker", engines.kafka()::stop, engines.kafka()::start, Duration.ofSeconds(60), backlog);
            case REDIS_OUTAGE -> hold("redis", engines.redis()::stop, engines.redis()::start, Duration.ofSeconds(15), backlog);
            case POSTGRES_OUTAGE -> hold("postgres", engines.postgres()::stop, engines.postgres()::start, Duration.ofSeconds(20), backlog);
            case KAFKA_BROKER_KILLS -> killBrokers(traffic, backlog);
        }
        Instant restored = Instant.now();
        Map<Integer, Long> duringFault = new java.util.TreeMap<>();
        snapshot(traffic.liveByStatus).forEach((status, n) -> {
            long d = n - beforeFault.getOrDefault(status, 0L);
            if (d > 0) {
                duringFault.put(status, d);
            }
        });
        Duration recovery = backlog.awaitCaughtUp(traffic.answeredWithEvent.sum(), Duration.ofMinutes(3));
        DemoTraffic.Report report = load.get();
        boolean drained = reconciliation.awaitDrained(report, Duration.ofMinutes(4), out);
        Reconciliation.Verdict verdict = reconciliation.verdict(report);
        Result result = new Result(scenario, variant, report, verdict, drained, Duration.between(faultStart, restored), recovery,
                backlog.max, Map.copyOf(duringFault));
        write(reportFile, result);
        return result;
    }

    /** What each step of the last drill measured (KAFKA_BROKER_KILLS: per kill), one line each. */
    public List<String> steps() {
        return List.copyOf(steps);
    }

    /**
     * SIGKILL a broker leading the fewest partitions of the usage events topic, 10 s down, restart; then the same with
     * the broker leading the most. After each restart: time until every partition of the stack's topics has three
     * in-sync replicas again, and time until the ledger holds every call answered before the restart (zero lag).
     */
    private void killBrokers(DemoTraffic traffic, Backlog backlog) {
        if (!(engines.kafka() instanceof EmbeddedKafkaCluster cluster)) {
            throw new IllegalStateException(Scenario.KAFKA_BROKER_KILLS + " needs a Kafka cluster (EmbeddedKafkaCluster), not "
                    + engines.kafka().bootstrapServers());
        }
        String events = stack.topics().usageEvents().name();
        for (String which : List.of("a broker leading the fewest partitions", "the leaders' broker")) {
            Map<Integer, Integer> leaders = cluster.leaders(events);
            EmbeddedKafkaEngine victim = which.startsWith("the") ? cluster.leadersBroker(events) : fewestLeaders(cluster, leaders);
            out.println("SIGKILL kafka broker " + victim.nodeId() + " (" + which + "; leaders of " + events + ": " + leaders + ")");
            long killed = System.nanoTime();
            cluster.kill(victim);
            // zero lag with the broker dead: its leaders must move (fenced after ~6 s) before the ledger catches up
            Duration zeroLagDead = backlog.awaitCaughtUp(traffic.answeredWithEvent.sum(), Duration.ofMinutes(2));
            backlog.watch(Duration.ofSeconds(Math.max(1, 15 - (System.nanoTime() - killed) / 1_000_000_000L)));
            cluster.restart(victim);
            long restarted = System.nanoTime();
            long answered = traffic.answeredWithEvent.sum();
            Duration zeroLag = backlog.awaitCaughtUp(answered, Duration.ofMinutes(3));
            cluster.awaitFullyReplicated(stack.topics().all().stream().map(t -> t.name()).toArray(String[]::new));
            Duration inSync = Duration.ofNanos(System.nanoTime() - restarted);
            String step = String.format("broker %d (%s) SIGKILLed: ledger had every call answered at the kill %.1fs"
                            + " after it (broker still dead); down %.1fs; after the restart: ledger had every call answered"
                            + " by then %.1fs later, all partitions 3 in sync %.1fs later; leaders then %s",
                    victim.nodeId(), which, zeroLagDead.toMillis() / 1000.0, (restarted - killed) / 1e9,
                    zeroLag.toMillis() / 1000.0, inSync.toMillis() / 1000.0, cluster.leaders(events));
            steps.add(step);
            out.println(step);
        }
    }

    private static EmbeddedKafkaEngine fewestLeaders(EmbeddedKafkaCluster cluster, Map<Integer, Integer> leaders) {
        EmbeddedKafkaEngine fewest = null;
        long least = Long.MAX_VALUE;
        for (EmbeddedKafkaEngine broker : cluster.brokers()) {
            long n = leaders.values().stream().filter(id -> id == broker.nodeId()).count();
            if (n < least) {
                least = n;
                fewest = broker;
            }
        }
        return fewest;
    }

    private static Map<Integer, Long> snapshot(Map<Integer, java.util.concurrent.atomic.LongAdder> live) {
        Map<Integer, Long> out = new java.util.HashMap<>();
        live.forEach((status, n) -> out.put(status, n.sum()));
        return out;
    }

    private void hold(String what, Runnable stop, Runnable start, Duration down, Backlog backlog) {
        out.println("stopping " + what + " for " + down.toSeconds() + "s");
        stop.run();
        backlog.watch(down);
        start.run();
        out.println(what + " is back");
    }

    private void write(Path file, Result result) throws IOException {
        Files.createDirectories(file.getParent());
        StringBuilder sb = new StringBuilder();
        sb.append(Instant.now()).append(' ').append(result.describe()).append('\n');
        result.verdict().lines().forEach(l -> sb.append("    ").append(l).append('\n'));
        Files.writeString(file, sb, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        out.print(sb);
    }

    /** How far the ledger trails the calls the edge has answered, sampled once a second. */
    private final class Backlog {
        private final DemoTraffic traffic;
        long max;

        Backlog(DemoTraffic traffic) {
            this.traffic = traffic;
        }

        void watch(Duration duration) {
            long until = System.nanoTime() + duration.toNanos();
            while (System.nanoTime() < until) {
                sample();
                Stack.pause(Duration.ofMillis(Math.min(1000, Math.max(1, (until - System.nanoTime()) / 1_000_000))));
            }
        }

        /** Time until the ledger holds at least {@code rows} rows (every call answered before the restore). */
        Duration awaitCaughtUp(long rows, Duration timeout) {
            long start = System.nanoTime();
            while (System.nanoTime() - start < timeout.toNanos()) {
                if (sample() >= rows) {
                    return Duration.ofNanos(System.nanoTime() - start);
                }
                Stack.pause(Duration.ofMillis(200));
            }
            return timeout;
        }

        private long sample() {
            long ledger = ledgerRows();
            if (ledger >= 0) {
                max = Math.max(max, traffic.answeredWithEvent.sum() - ledger);
            }
            return ledger;
        }

        private long ledgerRows() {
            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
                 ResultSet rs = db.createStatement().executeQuery("SELECT count(*) FROM usage_ledger")) {
                rs.next();
                return rs.getLong(1);
            } catch (SQLException e) {
                return -1; // Postgres may be the component being drilled
            }
        }
    }
}
