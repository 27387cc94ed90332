package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;
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
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Issue 21, FAIL_TO_DATABASE (ADR 0072): with Redis stopped, decisions go to Postgres rows with the scripts' rules;
 * 1,000 concurrent reserves stay within the credit; when Redis is back it takes over what Postgres decided before it
 * answers, and reservations made in Postgres settle there exactly once.
 */
@ExtendWith(EnginesExtension.class)
class QuotaDatabaseFallbackIT {

    static final Instant START = Instant.parse("2026-11-15T12:00:00Z");
    static final YearMonth NOV = YearMonth.of(2026, 11);

    private static QuotaConfig databasePolicy(Map<String, String> more) {
        var env = new java.util.HashMap<>(more);
        env.put("QUOTA_FAILURE_POLICY", "FAIL_TO_DATABASE");
        return QuotaConfig.fromEnv(env).withBackgroundOff();
    }

    /** One failure opens the breaker; its clock is the test's, so no probe reaches Redis until the test moves it. */
    private static final QuotaConfig CUT_CONFIG = databasePolicy(Map.of("QUOTA_BREAKER_FAILURES", "1", "QUOTA_BREAKER_OPEN_MS", "1000"));

    /** An engine (FAIL_TO_DATABASE) whose Redis connection goes through a proxy the test can blackhole: a network cut. */
    private record Cut(DelayProxy proxy, QuotaRedis connection, QuotaEngine engine) implements AutoCloseable {
        static Cut of(RedisEngine redis, QuotaFixture f, io.micrometer.core.instrument.MeterRegistry meters, AtomicLong breakerNanos) {
            java.net.URI direct = java.net.URI.create(redis.uri());
            DelayProxy proxy = DelayProxy.start(direct.getHost(), direct.getPort());
            QuotaRedis connection = QuotaRedis.connect(redis.uri().replace(":" + direct.getPort(), ":" + proxy.port()), Duration.ofMillis(300));
            QuotaEngine engine = QuotaEngine.builder().redis(connection.connection())
                    // long enough that a stopped Postgres does not take the accounts away
                    .accountDirectory(new dev.tokenmeter.edge.account.PostgresAccountDirectory(f.dataSource, Duration.ofMinutes(10)))
                    .usageBaseline(new JooqUsageBaseline(f.dataSource)).dataSource(f.dataSource).clock(f.clock)
                    .meterRegistry(meters).config(CUT_CONFIG).breakerNanoTime(breakerNanos::get).build();
            return new Cut(proxy, connection, engine);
        }

        @Override
        public void close() {
            engine.close();
            connection.close();
            proxy.close();
        }
    }

    @Test
    void thousandConcurrentReservesInPostgresStayWithinCreditAndRedisTakesOverExactly(RedisEngine redis, PostgresEngine postgres)
            throws Exception {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, databasePolicy(Map.of()), START)) {
            long estimate = 1_000_000; // $0.001
            long credit = 250 * estimate + 123_456; // covers 250 of the 1,000
            String u = f.user("dbcrowd", credit, 1_000_000, 1_000_000_000L, false);
            f.monthlyTotal(u, NOV, "SERVICE_CREDIT", 0);
            List<Decision> admitted;
            long expected = 0;
            List<String> leftOpen = new ArrayList<>();
            try {
                redis.stop();
                List<Decision> decisions = new ArrayList<>();
                try (ExecutorService pool = Executors.newFixedThreadPool(64)) {
                    List<Future<Decision>> futures = new ArrayList<>();
                    for (int i = 0; i < 1_000; i++) {
                        futures.add(pool.submit(() -> f.engine.reserve(f.request(u, estimate, 100))));
                    }
                    for (Future<Decision> fu : futures) decisions.add(fu.get(120, TimeUnit.SECONDS));
                }
                assertThat(decisions).allSatisfy(d -> assertThat(d.mode()).isEqualTo(DecisionMode.DATABASE));
                admitted = decisions.stream().filter(Decision::admitted).toList();
                assertThat(admitted.size() * estimate).as("admitted total within credit").isLessThanOrEqualTo(credit);
                assertThat(admitted).hasSize(250);
                assertThat(admitted).allSatisfy(d -> assertThat(d.reservationId()).contains(":d:"));
                assertThat(decisions.stream().filter(d -> !d.admitted()))
                        .allSatisfy(d -> assertThat(d.rejectReason()).isEqualTo(RejectReason.CREDIT_EXHAUSTED));

                // Settle most (concurrently, each twice), release some, leave 20 open for after Redis is back.
                List<Runnable> closes = new ArrayList<>();
                for (int i = 0; i < admitted.size(); i++) {
                    String id = admitted.get(i).reservationId();
                    if (i < 20) {
                        leftOpen.add(id);
                    } else if (i % 3 == 2) {
                        closes.add(() -> f.engine.release(id));
                    } else {
                        long actual = ThreadLocalRandom.current().nextLong(1, 2 * estimate);
                        expected += actual;
                        closes.add(() -> assertThat(f.engine.settle(id, actual, 90).status())
                                .isIn(SettleResult.Status.SETTLED, SettleResult.Status.ALREADY_SETTLED));
                        closes.add(() -> f.engine.settle(id, actual, 90));
                    }
                }
                try (ExecutorService pool = Executors.newFixedThreadPool(32)) {
                    List<Future<?>> futures = closes.stream().map(pool::submit).<Future<?>>map(x -> x).toList();
                    for (Future<?> fu : futures) fu.get(120, TimeUnit.SECONDS);
                }
                UsageSnapshot down = f.engine.usage(u, NOV);
                assertThat(down.mode()).isEqualTo(DecisionMode.DATABASE);
                assertThat(down.settledNanoUsd()).as("settled in Postgres").isEqualTo(expected);
                assertThat(down.reservedNanoUsd()).as("20 still open").isEqualTo(20 * estimate);
            } finally {
                redis.start();
            }
            await("usage answered by Redis again").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200))
                    .until(() -> f.engine.usage(u, NOV).mode() == DecisionMode.REDIS);
            assertThat(f.meters.counter("tokenmeter.quota.handovers").count()).as("one user-month handed over").isEqualTo(1.0);
            UsageSnapshot back = f.engine.usage(u, NOV);
            assertThat(back.settledNanoUsd()).as("Redis includes the Postgres settles").isEqualTo(expected);
            assertThat(back.reservedNanoUsd()).as("and the reservations still open").isEqualTo(20 * estimate);

            // The reservations made in Postgres settle in Redis now, once.
            long late = 0;
            for (String id : leftOpen) {
                assertThat(f.engine.settle(id, 1_000, 90).status()).isEqualTo(SettleResult.Status.SETTLED);
                assertThat(f.engine.settle(id, 1_000, 90).status()).isEqualTo(SettleResult.Status.ALREADY_SETTLED);
                late += 1_000;
            }
            UsageSnapshot end = f.engine.usage(u, NOV);
            assertThat(end.settledNanoUsd()).isEqualTo(expected + late);
            assertThat(end.reservedNanoUsd()).isZero();
            // A new reserve in Redis sees the same committed spend: what is left of the credit, exactly.
            Decision next = f.engine.reserve(f.request(u, 1, 1));
            assertThat(next.mode()).isEqualTo(DecisionMode.REDIS);
            assertThat(next.remainingCreditNanoUsd()).isEqualTo(Math.max(0, credit - expected - late - (next.admitted() ? 1 : 0)));
        }
    }

    /**
     * Redis unreachable but not restarted (a network cut): its counters survive, so the hand-over adds what Postgres
     * settled to them and writes the reservations still open in Postgres; each hand-over is applied once.
     */
    @Test
    void aHandOverAddsPostgresSettlesToCountersRedisKeptAndIsAppliedOnce(RedisEngine redis, PostgresEngine postgres) {
        AtomicLong breakerNanos = new AtomicLong();
        try (QuotaFixture f = new QuotaFixture(redis, postgres, CUT_CONFIG, START);
             Cut cut = Cut.of(redis, f, f.meters, breakerNanos)) {
            DelayProxy proxy = cut.proxy();
            QuotaEngine engine = cut.engine();
            String u = f.user("dbcut", 100_000, 1_000_000, 1_000_000_000L, false);
            Decision paid = engine.reserve(f.request(u, 10_000, 1));
            assertThat(engine.settle(paid.reservationId(), 10_000, 1).status()).isEqualTo(SettleResult.Status.SETTLED);
            Decision openInRedis = engine.reserve(f.request(u, 5_000, 1));
            assertThat(openInRedis.mode()).isEqualTo(DecisionMode.REDIS);
            f.monthlyTotal(u, NOV, "SERVICE_CREDIT", 10_000); // the sink has billed the settled call

            proxy.blackhole(true);
            // A read times out and opens the breaker; the breaker's clock stands still, so no probe goes to Redis.
            assertThat(engine.usage(u, NOV).mode()).isEqualTo(DecisionMode.DATABASE);
            Decision settledInDb = engine.reserve(f.request(u, 20_000, 1));
            Decision openInDb = engine.reserve(f.request(u, 7_000, 1));
            assertThat(List.of(settledInDb, openInDb)).allSatisfy(d -> {
                assertThat(d.mode()).isEqualTo(DecisionMode.DATABASE);
                assertThat(d.route()).isEqualTo(Route.SERVICE_CREDIT);
            });
            assertThat(openInDb.remainingCreditNanoUsd()).as("100,000 - 10,000 billed - 20,000 - 7,000 open in Postgres")
                    .isEqualTo(63_000);
            assertThat(engine.settle(settledInDb.reservationId(), 15_000, 1).status()).isEqualTo(SettleResult.Status.SETTLED);
            assertThat(engine.settle(openInRedis.reservationId(), 5_000, 1).status())
                    .as("a Redis reservation cannot be settled while Redis is cut").isEqualTo(SettleResult.Status.UNAVAILABLE);

            proxy.blackhole(false);
            breakerNanos.addAndGet(Duration.ofSeconds(2).toNanos()); // past QUOTA_BREAKER_OPEN_MS: the next call probes
            await("usage answered by Redis again").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(100))
                    .until(() -> engine.usage(u, NOV).mode() == DecisionMode.REDIS);
            UsageSnapshot back = engine.usage(u, NOV);
            assertThat(back.settledNanoUsd()).as("Redis's 10,000 plus the 15,000 settled in Postgres").isEqualTo(25_000);
            assertThat(back.reservedNanoUsd()).as("5,000 still open in Redis and 7,000 handed over").isEqualTo(12_000);

            assertThat(engine.settle(openInDb.reservationId(), 6_000, 1).status()).isEqualTo(SettleResult.Status.SETTLED);
            assertThat(engine.settle(openInDb.reservationId(), 6_000, 1).status()).isEqualTo(SettleResult.Status.ALREADY_SETTLED);
            assertThat(engine.settle(settledInDb.reservationId(), 15_000, 1).status())
                    .as("settled in Postgres before the hand-over: Postgres still says so").isEqualTo(SettleResult.Status.ALREADY_SETTLED);
            assertThat(engine.handOver()).as("nothing left pending").isZero();

            // The same hand-over again (its Postgres commit lost after Redis applied it): Redis skips it.
            QuotaKeys k = new QuotaKeys(u);
            List<Object> again = new QuotaScripts(f.redis.connection()).call(QuotaScripts.Script.HANDOVER,
                    new String[]{k.reservations(), k.deadlines(), k.purge(), k.reserved(), k.settled(NOV), k.personal(NOV), k.handover(NOV),
                            k.keyBudgets()},
                    START.toEpochMilli(), 1L, 15_000L, 0L, 60_000L, 60_000L, NOV.toString());
            assertThat(again.get(0)).isEqualTo("SKIPPED");
            UsageSnapshot end = engine.usage(u, NOV);
            assertThat(end.settledNanoUsd()).isEqualTo(31_000);
            assertThat(end.reservedNanoUsd()).isEqualTo(5_000);
        }
    }

    /**
     * Postgres away when Redis comes back: the hand-over cannot run, so Redis must not answer yet — and the engine
     * must not stay out of Redis for good either (a probe left half-open): the breaker opens again and the next probe,
     * with Postgres back, hands over and returns to Redis.
     */
    @Test
    void aHandOverThatFailsOnPostgresKeepsRedisOutUntilItSucceeds(RedisEngine redis, PostgresEngine postgres) {
        AtomicLong breakerNanos = new AtomicLong();
        var meters = new io.micrometer.core.instrument.simple.SimpleMeterRegistry(); // this engine's breaker gauge alone
        try (QuotaFixture f = new QuotaFixture(redis, postgres, CUT_CONFIG, START);
             Cut cut = Cut.of(redis, f, meters, breakerNanos)) {
            DelayProxy proxy = cut.proxy();
            QuotaEngine engine = cut.engine();
            f.dataSource.setConnectionTimeout(2_000); // Postgres stopped: fail in 2 s, not Hikari's 30
            String u = f.user("dbpgaway", 100_000, 1_000_000, 1_000_000_000L, false);
            assertThat(engine.reserve(f.request(u, 1_000, 1)).mode()).isEqualTo(DecisionMode.REDIS);
            proxy.blackhole(true);
            assertThat(engine.usage(u, NOV).mode()).isEqualTo(DecisionMode.DATABASE); // opens the breaker
            Decision inDb = engine.reserve(f.request(u, 2_000, 1));
            assertThat(inDb.mode()).isEqualTo(DecisionMode.DATABASE);
            proxy.blackhole(false);
            try {
                postgres.stop();
                breakerNanos.addAndGet(Duration.ofSeconds(2).toNanos());
                Decision probe = engine.reserve(f.request(u, 1_000, 1));
                assertThat(probe.mode()).as("no Redis answer before the hand-over").isNotEqualTo(DecisionMode.REDIS);
                assertThat(meters.get("tokenmeter.quota.breaker.open").gauge().value()).as("open again, not left half-open").isEqualTo(1.0);
            } finally {
                postgres.start();
            }
            // Each attempt past the open time (a hand-over that fails again, e.g. on a pooled connection the restart broke,
            // opens the breaker again).
            await("back in Redis once Postgres answers the hand-over").atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                    .until(() -> {
                        breakerNanos.addAndGet(Duration.ofSeconds(2).toNanos());
                        return engine.reserve(f.request(u, 1, 1)).mode() == DecisionMode.REDIS;
                    });
            assertThat(meters.counter("tokenmeter.quota.handovers").count()).isEqualTo(1.0);
            assertThat(engine.settle(inDb.reservationId(), 2_000, 1).status()).as("settled in Redis after the hand-over")
                    .isEqualTo(SettleResult.Status.SETTLED);
        }
    }

    @Test
    void postgresKeepsTheScriptsRulesRateLimitsPersonalKeyExpiryAndDisabled(RedisEngine redis, PostgresEngine postgres) {
        QuotaConfig config = databasePolicy(Map.of("QUOTA_RESERVATION_TTL_MS", "30000"));
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config, START)) {
            String limited = f.user("dbrpm", 1_000_000, 5, 1_000_000_000L, false);
            String personal = f.user("dbpersonal", 1_000, 1_000, 1_000_000_000L, true);
            String tokens = f.user("dbtpm", 1_000_000, 1_000, 100, false);
            String disabled = f.user("dbdisabled", 1_000_000, 1_000, 1_000_000_000L, false);
            f.disable(disabled);
            try {
                redis.stop();
                List<Decision> five = new ArrayList<>();
                for (int i = 0; i < 6; i++) five.add(f.engine.reserve(f.request(limited, 10, 1)));
                assertThat(five.subList(0, 5)).allSatisfy(d -> assertThat(d.admitted()).isTrue());
                Decision sixth = five.get(5);
                assertThat(sixth.rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_REQUESTS);
                assertThat(sixth.mode()).isEqualTo(DecisionMode.DATABASE);
                assertThat(sixth.retryAfter()).isPositive().isLessThanOrEqualTo(Duration.ofSeconds(60));
                f.clock.advance(Duration.ofSeconds(60));
                assertThat(f.engine.reserve(f.request(limited, 10, 1)).admitted()).as("the next window").isTrue();

                assertThat(f.engine.reserve(f.request(tokens, 10, 80)).admitted()).isTrue();
                assertThat(f.engine.reserve(f.request(tokens, 10, 30)).rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_TOKENS);

                Decision onCredit = f.engine.reserve(f.request(personal, 800, 1));
                assertThat(onCredit.route()).isEqualTo(Route.SERVICE_CREDIT);
                Decision onOwnKey = f.engine.reserve(f.request(personal, 800, 1));
                assertThat(onOwnKey.route()).as("past the credit: the user's own key").isEqualTo(Route.PERSONAL_KEY);

                assertThat(f.engine.reserve(f.request(disabled, 1, 1)).rejectReason()).isEqualTo(RejectReason.ACCOUNT_DISABLED);

                // Expiry: past its deadline an open reservation's estimate is freed at the user's next reserve; a late
                // settle still counts the call.
                f.clock.advance(Duration.ofSeconds(31));
                Decision after = f.engine.reserve(f.request(personal, 800, 1));
                assertThat(after.route()).as("the expired estimate no longer holds the credit").isEqualTo(Route.SERVICE_CREDIT);
                assertThat(f.engine.settle(onCredit.reservationId(), 700, 1).status()).isEqualTo(SettleResult.Status.SETTLED_AFTER_EXPIRY);
                assertThat(f.engine.settle(onCredit.reservationId(), 700, 1).status()).isEqualTo(SettleResult.Status.ALREADY_SETTLED);
                f.engine.release(after.reservationId());
                assertThat(f.engine.settle(after.reservationId(), 5, 1).status()).isEqualTo(SettleResult.Status.ALREADY_RELEASED);
                UsageSnapshot s = f.engine.usage(personal, NOV);
                assertThat(s.settledNanoUsd()).isEqualTo(700);
                assertThat(s.reservedNanoUsd()).isZero();
            } finally {
                redis.start();
            }
        }
    }
}
