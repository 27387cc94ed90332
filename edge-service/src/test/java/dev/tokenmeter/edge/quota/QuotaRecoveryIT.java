package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.net.DelayProxy;
import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Issue 3: rebuild from Postgres, reconciliation, and the failure policy with Redis stopped. */
@ExtendWith(EnginesExtension.class)
class QuotaRecoveryIT {

    static final Instant START = Instant.parse("2026-11-15T12:00:00Z");
    static final YearMonth NOV = YearMonth.of(2026, 11);

    @Test
    void countersAreRebuiltFromPostgresAfterFlushAllOncePerUser(RedisEngine redis, PostgresEngine postgres) throws Exception {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, QuotaConfig.defaults().withBackgroundOff(), START)) {
            String u = f.user("flush", 10_000, 1_000_000, 1_000_000_000L, false);
            Decision d = f.engine.reserve(f.request(u, 1_000, 1));
            f.engine.settle(d.reservationId(), 1_000, 1);
            // The sink has written more than this edge settled (other edges, or settles Redis lost).
            f.monthlyTotal(u, NOV, "SERVICE_CREDIT", 6_000);
            f.monthlyTotal(u, NOV, "PERSONAL_KEY", 777);
            f.monthlyTotal(u, NOV.minusMonths(1), "SERVICE_CREDIT", 9_999); // another month: not counted
            double rebuildsBefore = f.meters.counter("tokenmeter.quota.rebuilds").count();

            f.redis.connection().sync().flushall();

            List<Decision> decisions = new ArrayList<>();
            try (ExecutorService pool = Executors.newFixedThreadPool(16)) {
                List<Future<Decision>> futures = new ArrayList<>();
                for (int i = 0; i < 50; i++) futures.add(pool.submit(() -> f.engine.reserve(f.request(u, 100, 1))));
                for (Future<Decision> fu : futures) decisions.add(fu.get(30, TimeUnit.SECONDS));
            }
            assertThat(decisions).allSatisfy(x -> assertThat(x.mode()).isEqualTo(DecisionMode.REDIS));
            // 6,000 from Postgres + 50 x 100 reserved > 10,000: exactly 40 fit.
            assertThat(decisions.stream().filter(Decision::admitted).count()).isEqualTo(40);
            assertThat(f.meters.counter("tokenmeter.quota.rebuilds").count() - rebuildsBefore).as("one rebuild").isEqualTo(1.0);
            UsageSnapshot s = f.engine.usage(u, NOV);
            assertThat(s.settledNanoUsd()).isEqualTo(6_000);
            assertThat(s.personalKeyNanoUsd()).isEqualTo(777);
            assertThat(s.reservedNanoUsd()).isEqualTo(4_000);
        }
    }

    /**
     * A fault-suite run on a box at load 60 saw the edge exit at start-up: SCRIPT LOAD in warmUp timed out after the
     * connection's 1 s. Redis slower than the command timeout while the engine starts must not stop it: the scripts
     * load on first use once Redis answers in time.
     */
    @Test
    void aRedisSlowerThanTheTimeoutAtStartUpDoesNotStopTheEngine(RedisEngine redis, PostgresEngine postgres) throws Exception {
        java.net.URI direct = java.net.URI.create(redis.uri());
        try (QuotaFixture f = new QuotaFixture(redis, postgres, QuotaConfig.defaults().withBackgroundOff(), START);
             DelayProxy proxy = DelayProxy.start(direct.getHost(), direct.getPort());
             QuotaRedis slow = QuotaRedis.connect(redis.uri().replace(":" + direct.getPort(), ":" + proxy.port()),
                     Duration.ofMillis(300));
             QuotaEngine engine = QuotaEngine.builder().redis(slow.connection())
                     .accountDirectory(new dev.tokenmeter.edge.account.PostgresAccountDirectory(f.dataSource, Duration.ofSeconds(5)))
                     .usageBaseline(new JooqUsageBaseline(f.dataSource)).clock(f.clock).meterRegistry(f.meters)
                     .config(QuotaConfig.defaults().withBackgroundOff()).build()) {
            String u = f.user("slowstart", 1_000_000, 1_000, 1_000_000_000L, false);
            proxy.delay(Duration.ofMillis(400), Duration.ZERO); // each way: every command takes > 800 ms, timeout 300 ms

            assertThatCode(engine::warmUp).as("warm-up with Redis slower than the command timeout").doesNotThrowAnyException();

            proxy.delay(Duration.ZERO, Duration.ZERO);
            await("a reserve decided in Redis once it answers in time (scripts loaded on first use)")
                    .atMost(Duration.ofSeconds(30))
                    .until(() -> engine.reserve(f.request(u, 10, 1)).mode() == DecisionMode.REDIS);
        }
    }

    @Test
    void twoEdgeProcessesRebuildAUserOnlyOnce(RedisEngine redis, PostgresEngine postgres) throws Exception {
        try (QuotaFixture a = new QuotaFixture(redis, postgres, QuotaConfig.defaults().withBackgroundOff(), START);
             QuotaRedis otherConnection = QuotaRedis.connect(redis.uri(), Duration.ofSeconds(2));
             QuotaEngine b = QuotaEngine.builder().redis(otherConnection.connection())
                     .accountDirectory(new dev.tokenmeter.edge.account.PostgresAccountDirectory(a.dataSource, Duration.ofSeconds(5)))
                     .usageBaseline(new JooqUsageBaseline(a.dataSource)).clock(a.clock).meterRegistry(a.meters)
                     .config(QuotaConfig.defaults().withBackgroundOff()).build()) {
            String u = a.user("twoedges", 1_000_000, 1_000_000, 1_000_000_000L, false);
            a.monthlyTotal(u, NOV, "SERVICE_CREDIT", 3_000);
            double before = a.meters.counter("tokenmeter.quota.rebuilds").count();
            List<Future<Decision>> futures = new ArrayList<>();
            try (ExecutorService pool = Executors.newFixedThreadPool(16)) {
                for (int i = 0; i < 40; i++) {
                    QuotaEngine e = i % 2 == 0 ? a.engine : b;
                    futures.add(pool.submit(() -> e.reserve(a.request(u, 10, 1))));
                }
                for (Future<Decision> f : futures) assertThat(f.get(30, TimeUnit.SECONDS).route()).isEqualTo(Route.SERVICE_CREDIT);
            }
            // Both engines count into the same registry: one rebuild in total.
            assertThat(a.meters.counter("tokenmeter.quota.rebuilds").count() - before).isEqualTo(1.0);
            assertThat(a.engine.usage(u, NOV).settledNanoUsd()).isEqualTo(3_000);
            assertThat(b.usage(u, NOV).reservedNanoUsd()).isEqualTo(400);
        }
    }

    @Test
    void countersAreRebuiltAfterARedisRestart(RedisEngine redis, PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, QuotaConfig.defaults().withBackgroundOff(), START)) {
            String u = f.user("restart", 10_000, 1_000_000, 1_000_000_000L, false);
            Decision d = f.engine.reserve(f.request(u, 2_000, 1));
            f.engine.settle(d.reservationId(), 2_000, 1);
            f.monthlyTotal(u, NOV, "SERVICE_CREDIT", 2_000);
            try {
                redis.stop();
            } finally {
                redis.start();
            }
            await("the engine decides in Redis again after the restart").atMost(Duration.ofSeconds(20))
                    .pollInterval(Duration.ofMillis(100))
                    .until(() -> f.engine.reserve(f.request(u, 1, 1)).mode() == DecisionMode.REDIS);
            UsageSnapshot s = f.engine.usage(u, NOV);
            assertThat(s.settledNanoUsd()).isEqualTo(2_000);
            assertThat(s.mode()).isEqualTo(DecisionMode.REDIS);
        }
    }

    @Test
    void reconcilerRaisesRedisWhenPostgresIsAheadAndNeverLowersIt(RedisEngine redis, PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, QuotaConfig.defaults().withBackgroundOff(), START)) {
            String behind = f.user("behind", 100_000, 1_000_000, 1_000_000_000L, false);
            String ahead = f.user("ahead", 100_000, 1_000_000, 1_000_000_000L, false);
            for (String u : List.of(behind, ahead)) {
                f.engine.settle(f.engine.reserve(f.request(u, 5_000, 1)).reservationId(), 5_000, 1);
            }
            f.monthlyTotal(behind, NOV, "SERVICE_CREDIT", 8_000); // Redis lost 3,000
            f.monthlyTotal(ahead, NOV, "SERVICE_CREDIT", 4_000);  // the sink has not caught up yet

            QuotaReconciler.Result r = f.engine.reconciler().reconcile(NOV);
            assertThat(r.raised()).isEqualTo(1);
            assertThat(r.driftNanoUsd()).isEqualTo(3_000);
            assertThat(r.lagNanoUsd()).isEqualTo(1_000);
            assertThat(f.engine.usage(behind, NOV).settledNanoUsd()).isEqualTo(8_000);
            assertThat(f.engine.usage(ahead, NOV).settledNanoUsd()).isEqualTo(5_000);
            assertThat(f.meters.get("tokenmeter.quota.reconcile.drift.nano.usd").gauge().value()).isEqualTo(3_000.0);
            assertThat(f.engine.reconciler().reconcile(NOV).raised()).as("second pass: nothing left").isZero();
        }
    }

    /** Issue 21: the time the alert "reconciler behind" reads moves only when a whole pass completes. */
    @Test
    void lastCompletedReconcilePassIsExportedAndStaysPutWhileRedisIsDown(RedisEngine redis, PostgresEngine postgres) {
        // Scheduled (so exported) but an hour apart: only the passes this test runs happen.
        QuotaConfig config = QuotaConfig.fromEnv(java.util.Map.of("QUOTA_RECONCILE_INTERVAL_MS", "3600000",
                "QUOTA_SWEEP_INTERVAL_MS", "0"));
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config, START)) {
            String u = f.user("passes", 100_000, 1_000_000, 1_000_000_000L, false);
            f.engine.settle(f.engine.reserve(f.request(u, 5_000, 1)).reservationId(), 5_000, 1);
            f.monthlyTotal(u, NOV, "SERVICE_CREDIT", 6_000);
            String name = "tokenmeter.quota.reconcile.last.completed.timestamp.seconds";
            assertThat(f.meters.get(name).gauge().value()).as("before any pass: the engine's start")
                    .isEqualTo(START.getEpochSecond());

            f.clock.advance(Duration.ofMinutes(3));
            f.engine.reconciler().reconcileAll(NOV.minusMonths(1), NOV);
            assertThat(f.meters.get(name).gauge().value()).as("after a completed pass: its start")
                    .isEqualTo(START.plus(Duration.ofMinutes(3)).getEpochSecond());
            assertThat(f.engine.usage(u, NOV).settledNanoUsd()).as("the pass raised Redis to Postgres").isEqualTo(6_000);

            f.clock.advance(Duration.ofMinutes(3));
            try {
                redis.stop();
                assertThatThrownBy(() -> f.engine.reconciler().reconcileAll(NOV.minusMonths(1), NOV))
                        .as("a pass without Redis fails").isInstanceOf(RuntimeException.class);
            } finally {
                redis.start();
            }
            assertThat(f.meters.get(name).gauge().value()).as("a failed pass leaves the last completed one")
                    .isEqualTo(START.plus(Duration.ofMinutes(3)).getEpochSecond());
        }
    }

    @Test
    void reconcileTimeIsNotExportedWhenTheReconcilerIsOff(RedisEngine redis, PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, QuotaConfig.defaults().withBackgroundOff(), START)) {
            assertThat(f.meters.find("tokenmeter.quota.reconcile.last.completed.timestamp.seconds").gauge())
                    .as("no schedule, no age to alert on").isNull();
        }
    }

    @Test
    void failOpenAdmitsAgainstALocalShareWhileRedisIsDown(RedisEngine redis, PostgresEngine postgres) {
        QuotaConfig config = QuotaConfig.fromEnv(java.util.Map.of("QUOTA_FAILURE_POLICY", "FAIL_OPEN",
                "QUOTA_FAIL_OPEN_SHARE_PERCENT", "10")).withBackgroundOff();
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config, START)) {
            String u = f.user("open", 1_000_000, 100, 1_000_000_000L, false); // 10% -> 10 requests, 100,000 nano-USD
            assertThat(f.engine.reserve(f.request(u, 1, 1)).mode()).isEqualTo(DecisionMode.REDIS);
            try {
                redis.stop();
                List<Decision> ds = new ArrayList<>();
                for (int i = 0; i < 12; i++) ds.add(f.engine.reserve(f.request(u, 1_000, 1)));
                assertThat(ds).allSatisfy(d -> assertThat(d.mode()).isEqualTo(DecisionMode.FAIL_OPEN));
                assertThat(ds.stream().filter(Decision::admitted).count()).as("10% of 100 rpm").isEqualTo(10);
                assertThat(ds.get(11).rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_REQUESTS);
                assertThat(ds.get(0).reservationId()).contains(":l:");
                assertThat(f.engine.settle(ds.get(0).reservationId(), 900, 1).status()).isEqualTo(SettleResult.Status.LOCAL);
                assertThat(f.meters.get("tokenmeter.quota.breaker.open").gauge().value()).isEqualTo(1.0);
                assertThat(f.meters.counter("tokenmeter.quota.decisions", "mode", "FAIL_OPEN", "route", "SERVICE_CREDIT", "reason", "none").count())
                        .isEqualTo(10.0);
                // Local credit share: 100,000 nano-USD; a bigger estimate is refused.
                f.clock.advance(Duration.ofMinutes(1));
                assertThat(f.engine.reserve(f.request(u, 200_000, 1)).rejectReason()).isEqualTo(RejectReason.CREDIT_EXHAUSTED);
            } finally {
                redis.start();
            }
            await("breaker closes after Redis is back").atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200))
                    .until(() -> f.engine.reserve(f.request(u, 1, 1)).mode() == DecisionMode.REDIS);
        }
    }

    @Test
    void failClosedRejectsRetryablyWhileRedisIsDown(RedisEngine redis, PostgresEngine postgres) {
        QuotaConfig config = QuotaConfig.defaults().withFailurePolicy(FailurePolicy.FAIL_CLOSED).withBackgroundOff();
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config, START)) {
            String u = f.user("closed", 1_000_000, 100, 1_000_000_000L, false);
            Decision ok = f.engine.reserve(f.request(u, 1, 1));
            try {
                redis.stop();
                for (int i = 0; i < 8; i++) {
                    Decision d = f.engine.reserve(f.request(u, 1, 1));
                    assertThat(d.route()).isEqualTo(Route.REJECTED);
                    assertThat(d.rejectReason()).isEqualTo(RejectReason.QUOTA_UNAVAILABLE);
                    assertThat(d.mode()).isEqualTo(DecisionMode.FAIL_CLOSED);
                    assertThat(d.retryAfter()).isEqualTo(config.breakerOpenDuration());
                }
                assertThat(f.engine.settle(ok.reservationId(), 1, 1).status()).isEqualTo(SettleResult.Status.UNAVAILABLE);
                assertThat(f.meters.get("tokenmeter.quota.breaker.open").gauge().value()).isEqualTo(1.0);
                assertThat(f.engine.usage(u, NOV).mode()).as("usage answers from Postgres").isEqualTo(DecisionMode.FAIL_CLOSED);
            } finally {
                redis.start();
            }
            await("breaker closes after Redis is back").atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200))
                    .until(() -> f.engine.reserve(f.request(u, 1, 1)).mode() == DecisionMode.REDIS);
            assertThat(f.meters.get("tokenmeter.quota.breaker.open").gauge().value()).isZero();
        }
    }
}
