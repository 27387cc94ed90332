package dev.tokenmeter.edge.quota;

import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.redis.EmbeddedRedisCluster;
import io.lettuce.core.cluster.SlotHash;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 18 / ADR 0080: the quota engine, scripts unchanged, against the testkit's 3 x 1 Redis Cluster
 * (REDIS_URI in its cluster form): concurrent reserves and settles for users on every master stay exact, and the
 * sweeper finds expired reservations on every master.
 */
@ExtendWith(EnginesExtension.class)
class QuotaClusterIT {

    private static EmbeddedRedisCluster cluster;

    @BeforeAll
    static void startCluster() {
        cluster = EmbeddedRedisCluster.launch(3, 1);
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void concurrentReservesAndSettlesForUsersOnEveryMasterAreExact(PostgresEngine postgres) throws Exception {
        Instant start = Instant.now();
        try (QuotaFixture f = new QuotaFixture(cluster.uri(), postgres, QuotaConfig.defaults().withBackgroundOff(), start)) {
            assertThat(f.redis.commands().cluster()).isTrue();
            long estimate = 1_000_000;
            int usersCount = 24;
            int perUser = 40;
            int admittable = 10;
            List<String> users = new ArrayList<>();
            Set<Integer> masters = new HashSet<>();
            for (int i = 0; i < usersCount; i++) {
                String u = f.user("cl", admittable * estimate + 777, 1_000_000, 1_000_000_000L, false);
                users.add(u);
                masters.add(cluster.masterOf(SlotHash.getSlot("{u:" + u + "}")).port());
            }
            assertThat(masters).as("the users' keys live on every master").hasSize(3);

            Map<String, List<Decision>> decisions = new HashMap<>();
            try (ExecutorService pool = Executors.newFixedThreadPool(32)) {
                Map<String, List<Future<Decision>>> futures = new HashMap<>();
                for (int n = 0; n < perUser; n++) {
                    for (String u : users) {
                        futures.computeIfAbsent(u, k -> new ArrayList<>()).add(pool.submit(() -> f.engine.reserve(f.request(u, estimate, 100))));
                    }
                }
                for (var e : futures.entrySet()) {
                    List<Decision> list = new ArrayList<>();
                    for (Future<Decision> fu : e.getValue()) list.add(fu.get(60, TimeUnit.SECONDS));
                    decisions.put(e.getKey(), list);
                }
            }
            Map<String, Long> expected = new HashMap<>();
            List<Runnable> closes = new ArrayList<>();
            for (String u : users) {
                List<Decision> ds = decisions.get(u);
                assertThat(ds).as("user %s decided in Redis", u).allSatisfy(d -> assertThat(d.mode()).isEqualTo(DecisionMode.REDIS));
                List<Decision> admitted = ds.stream().filter(Decision::admitted).toList();
                assertThat(admitted).as("user %s: exactly the credit's worth admitted", u).hasSize(admittable);
                AtomicLong sum = new AtomicLong();
                for (int i = 0; i < admitted.size(); i++) {
                    String id = admitted.get(i).reservationId();
                    if (i % 3 == 2) {
                        closes.add(() -> f.engine.release(id));
                    } else {
                        long actual = ThreadLocalRandom.current().nextLong(1, 2 * estimate);
                        sum.addAndGet(actual);
                        closes.add(() -> f.engine.settle(id, actual, 90));
                        closes.add(() -> f.engine.settle(id, actual, 90)); // a duplicate settle counts once
                    }
                }
                expected.put(u, sum.get());
            }
            try (ExecutorService pool = Executors.newFixedThreadPool(32)) {
                List<Future<?>> futures = closes.stream().map(pool::submit).<Future<?>>map(x -> x).toList();
                for (Future<?> fu : futures) fu.get(60, TimeUnit.SECONDS);
            }
            YearMonth month = YearMonth.from(start.atZone(ZoneOffset.UTC));
            for (String u : users) {
                UsageSnapshot usage = f.engine.usage(u, month);
                assertThat(usage.settledNanoUsd()).as("user %s settled", u).isEqualTo(expected.get(u));
                assertThat(usage.reservedNanoUsd()).as("user %s reserved", u).isZero();
            }
        }
    }

    @Test
    void theSweeperFreesExpiredReservationsOnEveryMaster(PostgresEngine postgres) {
        Instant start = Instant.now();
        try (QuotaFixture f = new QuotaFixture(cluster.uri(), postgres, QuotaConfig.defaults().withBackgroundOff(), start)) {
            List<String> users = new ArrayList<>();
            Set<Integer> masters = new HashSet<>();
            while (masters.size() < 3 || users.size() < 9) {
                String u = f.user("sw", 5_000, 1000, 1_000_000, false);
                users.add(u);
                masters.add(cluster.masterOf(SlotHash.getSlot("{u:" + u + "}")).port());
            }
            for (String u : users) {
                assertThat(f.engine.reserve(f.request(u, 1_000, 10)).admitted()).isTrue();
            }
            YearMonth month = YearMonth.from(start.atZone(ZoneOffset.UTC));
            f.clock.advance(QuotaConfig.defaults().reservationTtl().plusMillis(1));
            assertThat(f.engine.sweepExpired()).as("one pass frees every user's reservation, on all %d masters", masters.size())
                    .isEqualTo(users.size());
            for (String u : users) {
                assertThat(f.engine.usage(u, month).reservedNanoUsd()).as("user %s", u).isZero();
            }
            assertThat(f.engine.sweepExpired()).as("nothing left").isZero();
        }
    }
}
