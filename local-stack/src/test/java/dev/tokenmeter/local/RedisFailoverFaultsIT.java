package dev.tokenmeter.local;

import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.redis.EmbeddedRedisCluster;
import dev.tokenmeter.testkit.redis.EmbeddedRedisEngine;
import io.lettuce.core.cluster.SlotHash;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 18's cluster drill, step 2 (ADR 0089; Maven profile {@code faults}): the edge from its shipped jar with its quota
 * in a 3 x 1 Redis Cluster, steady load from twelve users with a $0.0008 monthly credit each (they reach it about when
 * a master dies); the master serving most of them is SIGKILLed, its replica is promoted, calls go on. Measured: what callers saw
 * during the failover, and for each user on the dead master the over-admission (ledger spend on service credit minus
 * the credit limit), asserted within the declared bound: the user's calls admitted from 1 s before the kill (the
 * replication window allowed on loopback) until the quota reconciler (1 s period here) had Postgres's total after the
 * ledger caught up with the promotion, times the user's largest call. Then the usual checks ({@link Reconciliation}).
 */
@ExtendWith(EnginesExtension.class)
class RedisFailoverFaultsIT {

    private static final int RATE_PER_SECOND = 12;
    private static final int USERS = 12;
    private static final long CREDIT_NANO_USD = Money.parseUsd("0.0008");
    private static final Duration REPLICATION_WINDOW = Duration.ofSeconds(1);
    private static final Duration RECONCILE_INTERVAL = Duration.ofSeconds(1);

    @Test
    void aKilledRedisMasterCostsAtMostTheDeclaredOverAdmission(Engines engines, @TempDir Path workDir) throws Exception {
        String prefix = Names.unique("rfo") + ".";
        try (EmbeddedRedisCluster cluster = EmbeddedRedisCluster.launch(3, 1);
             FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix, (service, env) -> {
                 if (Stack.EDGE_JAR.equals(service)) {
                     env.put("REDIS_URI", cluster.uri());
                     env.put("QUOTA_RECONCILE_INTERVAL_MS", Long.toString(RECONCILE_INTERVAL.toMillis()));
                 }
             })) {
            List<DemoData.DemoUser> users = IntStream.range(0, USERS).mapToObj(i -> new DemoData.DemoUser("drill-" + i,
                    "globex", "pro", CREDIT_NANO_USD, null, false, "$0.0008 credit, no own key: rejected when out")).toList();
            DemoData.Seeded seeded = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(), stack.kafka(),
                    stack.topics(), prefix, users);
            Map<String, Integer> slotByUser = new HashMap<>();
            seeded.callers().forEach(c -> slotByUser.put(c.userId(), SlotHash.getSlot("{u:" + c.userId() + "}")));
            Map<EmbeddedRedisEngine, List<String>> usersByMaster = new HashMap<>();
            slotByUser.forEach((user, slot) -> usersByMaster.computeIfAbsent(cluster.masterOf(slot), m -> new ArrayList<>()).add(user));
            EmbeddedRedisEngine victim = usersByMaster.entrySet().stream().max(Map.Entry.comparingByValue(
                    java.util.Comparator.comparingInt(List::size))).orElseThrow().getKey();
            List<String> onVictim = usersByMaster.get(victim);
            int aSlot = slotByUser.get(onVictim.get(0));

            Reconciliation reconciliation = new Reconciliation(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
            DemoTraffic traffic = new DemoTraffic(stack.edgeUrl(), seeded.callers());
            CompletableFuture<DemoTraffic.Report> load = CompletableFuture.supplyAsync(() -> {
                try {
                    return traffic.run(Duration.ofSeconds(50), RATE_PER_SECOND, 18, new PrintStream(OutputStream.nullOutputStream()));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
            });
            Stack.pause(Duration.ofSeconds(18)); // the users reach their credit about now (~$0.00004 a second each)
            Map<Integer, Long> before = snapshot(traffic);
            Instant killedAt = Instant.now();
            System.out.println("SIGKILL redis master on port " + victim.port() + " serving " + onVictim);
            cluster.kill(victim);
            await("a replica takes over slot " + aSlot).atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(100))
                    .until(() -> promoted(cluster, aSlot, victim));
            Instant promotedAt = Instant.now();
            Map<Integer, Long> duringFailover = diff(before, snapshot(traffic));
            long answeredAtPromotion = traffic.answeredWithEvent.sum();
            await("the ledger holds every call answered by the promotion").atMost(Duration.ofMinutes(2))
                    .until(() -> reconciliation.ledgerRows() >= answeredAtPromotion);
            Instant windowEnd = Instant.now().plus(RECONCILE_INTERVAL.multipliedBy(2));
            cluster.restart(victim);
            cluster.awaitHealthy();

            DemoTraffic.Report report = load.get();
            assertThat(reconciliation.awaitDrained(report, Duration.ofMinutes(4), System.out)).as("pipeline drained").isTrue();
            Reconciliation.Verdict verdict = reconciliation.verdict(report);
            assertThat(verdict.ok()).as(String.join("\n", verdict.lines())).isTrue();

            Instant windowStart = killedAt.minus(REPLICATION_WINDOW);
            long maxOver = Long.MIN_VALUE;
            long maxBound = 0;
            int atLimit = 0;
            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())) {
                for (String user : onVictim) {
                    Spend spend = spend(db, user, windowStart, windowEnd);
                    long over = spend.total - CREDIT_NANO_USD;
                    long bound = spend.callsInWindow * spend.maxCall;
                    System.out.printf("RedisFailoverFaultsIT user %s: spent %s of %s, over-admitted %d nano-USD, %d calls"
                                    + " admitted in the window, largest call %d nano-USD, bound %d nano-USD, rejected (402/429) %d%n",
                            user, Money.formatUsd(spend.total), Money.formatUsd(CREDIT_NANO_USD), over, spend.callsInWindow,
                            spend.maxCall, bound, report.byUserAndStatus().entrySet().stream()
                                    .filter(e -> e.getKey().equals(user + " 402") || e.getKey().equals(user + " 429"))
                                    .mapToLong(Map.Entry::getValue).sum());
                    assertThat(over).as("user %s over-admitted by at most the declared bound", user).isLessThanOrEqualTo(bound);
                    maxOver = Math.max(maxOver, over);
                    maxBound = Math.max(maxBound, bound);
                    if (spend.total + spend.maxCall > CREDIT_NANO_USD) {
                        atLimit++;
                    }
                }
            }
            System.out.printf("RedisFailoverFaultsIT: master SIGKILLed with %d of %d users, replica promoted after %.1fs;"
                            + " answers during the failover %s; window %s..%s (%.1fs); max over-admission %d nano-USD, max bound"
                            + " %d nano-USD; calls %d by status %s%n",
                    onVictim.size(), USERS, Duration.between(killedAt, promotedAt).toMillis() / 1000.0, duringFailover,
                    windowStart, windowEnd, Duration.between(windowStart, windowEnd).toMillis() / 1000.0, maxOver, maxBound,
                    report.sent(), report.byStatus());
            assertThat(atLimit).as("users on the dead master that had reached their credit (else nothing was measured)")
                    .isGreaterThanOrEqualTo(Math.min(2, onVictim.size()));
            assertThat(report.eventIds().size() - answeredAtPromotion).as("calls answered (with an event id) after the promotion")
                    .isGreaterThanOrEqualTo(RATE_PER_SECOND * 5L);
        }
    }

    private record Spend(long total, long callsInWindow, long maxCall) {
    }

    private static Spend spend(Connection db, String user, Instant from, Instant to) throws Exception {
        try (PreparedStatement q = db.prepareStatement("SELECT coalesce(sum(cost_nano_usd), 0), count(*) FILTER (WHERE"
                + " occurred_at BETWEEN ? AND ?), coalesce(max(cost_nano_usd), 0) FROM usage_ledger"
                + " WHERE user_id = ? AND key_source = 'SERVICE_CREDIT'")) {
            q.setTimestamp(1, Timestamp.from(from));
            q.setTimestamp(2, Timestamp.from(to));
            q.setString(3, user);
            try (ResultSet rs = q.executeQuery()) {
                rs.next();
                return new Spend(rs.getLong(1), rs.getLong(2), rs.getLong(3));
            }
        }
    }

    private static boolean promoted(EmbeddedRedisCluster cluster, int slot, EmbeddedRedisEngine victim) {
        try {
            return cluster.masterOf(slot) != victim;
        } catch (IllegalStateException noMasterYet) {
            return false;
        }
    }

    private static Map<Integer, Long> snapshot(DemoTraffic traffic) {
        Map<Integer, Long> out = new TreeMap<>();
        traffic.liveByStatus.forEach((status, n) -> out.put(status, n.sum()));
        return out;
    }

    private static Map<Integer, Long> diff(Map<Integer, Long> before, Map<Integer, Long> after) {
        Map<Integer, Long> out = new TreeMap<>();
        after.forEach((status, n) -> {
            long d = n - before.getOrDefault(status, 0L);
            if (d > 0) {
                out.put(status, d);
            }
        });
        return out;
    }
}
