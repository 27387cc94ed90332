package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.RedisEngine;
import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Issue 3: decisions of the quota engine on a real Redis and Postgres. */
@ExtendWith(EnginesExtension.class)
class QuotaEngineIT {

    static final Instant START = Instant.parse("2026-11-15T12:00:59.900Z");
    static final YearMonth NOV = YearMonth.of(2026, 11);

    QuotaFixture f;
    QuotaEngine engine;

    @BeforeEach
    void setUp(RedisEngine redis, PostgresEngine postgres) {
        f = new QuotaFixture(redis, postgres, QuotaConfig.defaults().withBackgroundOff(), START);
        engine = f.engine;
    }

    @AfterEach
    void tearDown() {
        f.close();
    }

    @Test
    void creditCoversEstimatesThenPersonalKeyOrRejection() {
        String alice = f.user("alice", 1_000, 1000, 1_000_000, false);
        String bob = f.user("bob", 1_000, 1000, 1_000_000, true);
        for (String u : List.of(alice, bob)) {
            Decision first = engine.reserve(f.request(u, 600, 10));
            assertThat(first.route()).isEqualTo(Route.SERVICE_CREDIT);
            assertThat(first.mode()).isEqualTo(DecisionMode.REDIS);
            assertThat(first.reservationId()).startsWith("{u:" + u + "}:2026-11:r:");
            assertThat(first.remainingCreditNanoUsd()).isEqualTo(400);
            assertThat(first.creditNanoUsd()).isEqualTo(1_000);
        }
        Decision a2 = engine.reserve(f.request(alice, 600, 10));
        assertThat(a2.route()).isEqualTo(Route.REJECTED);
        assertThat(a2.rejectReason()).isEqualTo(RejectReason.CREDIT_EXHAUSTED);
        assertThat(a2.reservationId()).isNull();
        Decision b2 = engine.reserve(f.request(bob, 600, 10));
        assertThat(b2.route()).isEqualTo(Route.PERSONAL_KEY);
        // Personal-key usage is tracked, not counted against the credit.
        engine.settle(b2.reservationId(), 700, 10);
        UsageSnapshot u = engine.usage(bob, NOV);
        assertThat(u.personalKeyNanoUsd()).isEqualTo(700);
        assertThat(u.reservedNanoUsd()).isEqualTo(600);
        assertThat(u.settledNanoUsd()).isZero();
        assertThat(u.remainingCreditNanoUsd()).isEqualTo(400);
    }

    @Test
    void settleIsIdempotentAndReleaseFreesTheEstimate() {
        String u = f.user("idem", 10_000, 1000, 1_000_000, false);
        Decision d = engine.reserve(f.request(u, 3_000, 10));
        SettleResult s1 = engine.settle(d.reservationId(), 2_500, 12);
        assertThat(s1.status()).isEqualTo(SettleResult.Status.SETTLED);
        assertThat(s1.settledNanoUsd()).isEqualTo(2_500);
        SettleResult s2 = engine.settle(d.reservationId(), 2_500, 12);
        assertThat(s2.status()).isEqualTo(SettleResult.Status.ALREADY_SETTLED);
        engine.settle(d.reservationId(), 9_999, 12);
        engine.release(d.reservationId());
        assertThat(engine.usage(u, NOV).settledNanoUsd()).isEqualTo(2_500);
        assertThat(engine.usage(u, NOV).reservedNanoUsd()).isZero();

        Decision r = engine.reserve(f.request(u, 4_000, 10));
        assertThat(engine.usage(u, NOV).reservedNanoUsd()).isEqualTo(4_000);
        engine.release(r.reservationId());
        engine.release(r.reservationId());
        assertThat(engine.settle(r.reservationId(), 4_000, 1).status()).isEqualTo(SettleResult.Status.ALREADY_RELEASED);
        UsageSnapshot after = engine.usage(u, NOV);
        assertThat(after.reservedNanoUsd()).isZero();
        assertThat(after.settledNanoUsd()).isEqualTo(2_500);
        assertThat(after.remainingCreditNanoUsd()).isEqualTo(7_500);
        assertThat(engine.settle("{u:" + u + "}:2026-11:r:" + java.util.UUID.randomUUID(), 1, 1).status())
                .isEqualTo(SettleResult.Status.UNKNOWN_RESERVATION);
    }

    @Test
    void aNamedReservationWithItsOwnTtl_outlivesTheDefaultTtl_andExpiresAtItsOwn() {
        // A batch's reservation (ADR 0087): named after the batch, held 25 h instead of QUOTA_RESERVATION_TTL_MS.
        String u = f.user("batch", 1_000, 1000, 1_000_000, false);
        String name = java.util.UUID.nameUUIDFromBytes("batch_abc".getBytes(java.nio.charset.StandardCharsets.UTF_8)).toString();
        long ttlMs = Duration.ofHours(25).toMillis();
        Decision d = engine.reserve(new ReserveRequest(u, "k1", "gpt-4o-mini", 1_000, 0, ReserveRequest.NO_KEY_BUDGET,
                ReserveRequest.NO_TENANT_BUDGET, name, ttlMs));
        assertThat(d.route()).isEqualTo(Route.SERVICE_CREDIT);
        assertThat(d.reservationId()).isEqualTo("{u:" + u + "}:2026-11:r:k1:" + name);

        f.clock.advance(QuotaConfig.defaults().reservationTtl().multipliedBy(6).plusMillis(1));
        engine.sweepExpired();
        assertThat(engine.reserve(f.request(u, 1, 0)).rejectReason()).as("still held an hour later")
                .isEqualTo(RejectReason.CREDIT_EXHAUSTED);
        f.clock.advance(Duration.ofHours(24).minusMinutes(2));
        engine.sweepExpired();
        assertThat(engine.reserve(f.request(u, 1, 0)).rejectReason()).as("still held at 25 h minus two minutes")
                .isEqualTo(RejectReason.CREDIT_EXHAUSTED);
        f.clock.advance(Duration.ofMinutes(2));
        assertThat(engine.sweepExpired()).as("freed at its own TTL").isGreaterThanOrEqualTo(1);
        assertThat(engine.usage(u, NOV).reservedNanoUsd()).isZero();

        assertThatThrownBy(() -> engine.reserve(new ReserveRequest(u, "k1", "m", 1, 0, -1, -1, "not-a-uuid", 0)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> engine.reserve(new ReserveRequest(u, "k1", "m", 1, 0, -1, -1, null,
                ReserveRequest.MAX_RESERVATION_TTL_MS + 1))).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void staleReservationsExpireLazilyAndByTheSweeperAndALateSettleStillCounts() {
        String u = f.user("stale", 1_000, 1000, 1_000_000, false);
        Decision crashed = engine.reserve(f.request(u, 1_000, 10));
        assertThat(engine.reserve(f.request(u, 1, 1)).rejectReason()).isEqualTo(RejectReason.CREDIT_EXHAUSTED);

        f.clock.advance(QuotaConfig.defaults().reservationTtl().plusMillis(1));
        Decision next = engine.reserve(f.request(u, 800, 10));
        assertThat(next.route()).as("expired reservation freed inside reserve").isEqualTo(Route.SERVICE_CREDIT);

        f.clock.advance(QuotaConfig.defaults().reservationTtl().plusMillis(1));
        assertThat(engine.sweepExpired()).as("the sweeper frees the second one").isGreaterThanOrEqualTo(1);
        assertThat(engine.usage(u, NOV).reservedNanoUsd()).isZero();

        // The crashed caller comes back: the call happened, its cost counts once.
        SettleResult late = engine.settle(crashed.reservationId(), 900, 10);
        assertThat(late.status()).isEqualTo(SettleResult.Status.SETTLED_AFTER_EXPIRY);
        assertThat(engine.settle(crashed.reservationId(), 900, 10).status()).isEqualTo(SettleResult.Status.ALREADY_SETTLED);
        assertThat(engine.usage(u, NOV).settledNanoUsd()).isEqualTo(900);
    }

    @Test
    void closedRecordsKeepOnlyStateAndRouteForOneTtlAndARepeatAfterThatChangesNothing() {
        // issue 20 / ADR 0067: ~240-380 B of Redis per call for 24 h was the soak's finding
        String u = f.user("closed", 100_000, 1000, 1_000_000, false);
        QuotaKeys keys = new QuotaKeys(u);
        var redis = f.redis.connection().sync();
        Decision settled = engine.reserve(f.request(u, 3_000, 10));
        Decision released = engine.reserve(f.request(u, 2_000, 10));
        Decision crashed = engine.reserve(f.request(u, 1_000, 10));
        engine.settle(settled.reservationId(), 2_500, 12);
        engine.release(released.reservationId());
        assertThat(redis.hget(keys.reservations(), settled.reservationId())).isEqualTo("S|S");
        assertThat(redis.hget(keys.reservations(), released.reservationId())).isEqualTo("R|S");
        assertThat(engine.settle(settled.reservationId(), 2_500, 12).status()).isEqualTo(SettleResult.Status.ALREADY_SETTLED);
        assertThat(engine.settle(settled.reservationId(), 2_500, 12).route()).isEqualTo(Route.SERVICE_CREDIT);
        assertThat(engine.settle(released.reservationId(), 2_000, 12).status()).isEqualTo(SettleResult.Status.ALREADY_RELEASED);
        engine.release(settled.reservationId());

        // One TTL later the crashed caller's reservation has expired (full tombstone, 24 h); the closed ones are purged
        f.clock.advance(QuotaConfig.defaults().reservationTtl().plusMillis(1));
        engine.reserve(f.request(u, 1, 1)); // lazily expires and purges (at most QUOTA_SWEEP_BATCH) inside reserve
        assertThat(redis.hexists(keys.reservations(), settled.reservationId())).isFalse();
        assertThat(redis.hexists(keys.reservations(), released.reservationId())).isFalse();
        assertThat(redis.hget(keys.reservations(), crashed.reservationId())).startsWith("E|S|1000|10|");

        // A repeat after the purge changes nothing: no second count of the settled cost, no estimate freed twice
        UsageSnapshot before = engine.usage(u, NOV);
        assertThat(engine.settle(settled.reservationId(), 2_500, 12).status()).isEqualTo(SettleResult.Status.UNKNOWN_RESERVATION);
        engine.release(released.reservationId());
        assertThat(engine.usage(u, NOV)).isEqualTo(before);
        assertThat(before.settledNanoUsd()).isEqualTo(2_500);

        // The expired one still counts once when its caller comes back within the 24 h retention
        assertThat(engine.settle(crashed.reservationId(), 900, 10).status()).isEqualTo(SettleResult.Status.SETTLED_AFTER_EXPIRY);
        assertThat(engine.usage(u, NOV).settledNanoUsd()).isEqualTo(3_400);
        assertThat(redis.hget(keys.reservations(), crashed.reservationId())).isEqualTo("S|S");
    }

    @Test
    void requestRateHasNoDoubleBurstAcrossAMinuteBoundary() {
        String u = f.user("rate", 1_000_000, 10, 1_000_000, false); // 10/min: one every 6 s, burst 10
        // 12:00:59.900, just before a fixed window would reset.
        for (int i = 0; i < 10; i++) assertThat(engine.reserve(f.request(u, 1, 1)).admitted()).isTrue();
        Decision over = engine.reserve(f.request(u, 1, 1));
        assertThat(over.rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_REQUESTS);
        assertThat(over.retryAfter()).isEqualTo(Duration.ofSeconds(6));
        assertThat(over.requests().limit()).isEqualTo(10);
        assertThat(over.requests().remaining()).isZero();

        f.clock.set(Instant.parse("2026-11-15T12:01:00.100Z")); // past the boundary: a fixed window allows 10 more
        assertThat(engine.reserve(f.request(u, 1, 1)).rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_REQUESTS);

        // GCRA: a burst of at most the limit, then one per 6 s; the boundary does not refill the bucket.
        int admitted = 10;
        Instant end = START.plusSeconds(60);
        f.clock.set(START);
        while (f.clock.instant().isBefore(end)) {
            f.clock.advance(Duration.ofMillis(500));
            if (engine.reserve(f.request(u, 1, 1)).admitted()) admitted++;
        }
        assertThat(admitted).as("10 burst + one per 6 s over 60 s").isEqualTo(20);
    }

    @Test
    void tokenRateAndPerKeyLimits() {
        String u = f.user("tokens", 1_000_000, 1000, 1_000, false);
        assertThat(engine.reserve(f.request(u, 1, 800)).admitted()).isTrue();
        Decision over = engine.reserve(f.request(u, 1, 300));
        assertThat(over.rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_TOKENS);
        assertThat(over.tokens().remaining()).isEqualTo(200);
        assertThat(over.retryAfter()).isPositive();
        assertThat(engine.reserve(f.request(u, 1, 200)).admitted()).isTrue();
    }

    @Test
    void settleTruesUpTheTokenRateWithTheActualTokens() { // issue 3: token limits count actual tokens, not the estimate
        String over = f.user("tok-over", 1_000_000, 1000, 1_000, false); // 1,000 tokens/min: one per 60 ms
        Decision small = engine.reserve(f.request(over, 1, 100));
        assertThat(engine.settle(small.reservationId(), 1, 900).status()).isEqualTo(SettleResult.Status.SETTLED);
        Decision next = engine.reserve(f.request(over, 1, 200));
        assertThat(next.rejectReason()).as("900 of 1,000 used, not the estimated 100").isEqualTo(RejectReason.RATE_LIMITED_TOKENS);
        assertThat(next.tokens().remaining()).isEqualTo(100);
        assertThat(next.retryAfter()).as("100 more tokens refill in 6 s").isEqualTo(Duration.ofSeconds(6));
        f.clock.advance(Duration.ofSeconds(6));
        assertThat(engine.reserve(f.request(over, 1, 200)).admitted()).isTrue();

        String under = f.user("tok-under", 1_000_000, 1000, 1_000, false);
        Decision big = engine.reserve(f.request(under, 1, 800));
        assertThat(engine.reserve(f.request(under, 1, 800)).rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_TOKENS);
        engine.settle(big.reservationId(), 1, 100);
        Decision again = engine.reserve(f.request(under, 1, 800));
        assertThat(again.admitted()).as("700 unused tokens given back at settle").isTrue();
        assertThat(again.tokens().remaining()).isEqualTo(100);
        // A repeated settle changes nothing, the token limit included.
        engine.settle(big.reservationId(), 1, 0);
        assertThat(engine.reserve(f.request(under, 1, 200)).rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_TOKENS);
    }

    @Test
    void releaseGivesBackOnlyTheTokensStillOwed() {
        String u = f.user("tok-release", 1_000_000, 1000, 1_000, false);
        Decision d = engine.reserve(f.request(u, 1, 800));
        assertThat(engine.reserve(f.request(u, 1, 300)).admitted()).isFalse();
        engine.release(d.reservationId());
        assertThat(engine.reserve(f.request(u, 1, 300)).admitted()).as("the failed call's 800 tokens given back").isTrue();

        f.clock.advance(Duration.ofSeconds(60)); // bucket full again
        Decision first = engine.reserve(f.request(u, 1, 1_000));
        f.clock.advance(Duration.ofSeconds(60)); // first's tokens have refilled by themselves
        Decision second = engine.reserve(f.request(u, 1, 1_000));
        assertThat(second.admitted()).isTrue();
        engine.release(first.reservationId());
        assertThat(engine.reserve(f.request(u, 1, 100)).rejectReason())
                .as("releasing a call whose tokens already refilled must not give the second call's tokens away")
                .isEqualTo(RejectReason.RATE_LIMITED_TOKENS);

        f.clock.advance(Duration.ofSeconds(60));
        Decision third = engine.reserve(f.request(u, 1, 1_000));
        f.clock.advance(Duration.ofSeconds(30)); // half of third's tokens have refilled
        assertThat(engine.reserve(f.request(u, 1, 500)).admitted()).isTrue();
        engine.release(third.reservationId()); // gives back the 500 still owed, not 1,000
        assertThat(engine.reserve(f.request(u, 1, 600)).rejectReason()).as("500 left, as if third had never run")
                .isEqualTo(RejectReason.RATE_LIMITED_TOKENS);
        assertThat(engine.reserve(f.request(u, 1, 500)).admitted()).isTrue();
    }

    @Test
    void perApiKeyTokenLimitIsTruedUpForTheKeyThatUsedTheTokens(RedisEngine redis, PostgresEngine postgres) {
        QuotaConfig halfPerKey = QuotaConfig.fromEnv(java.util.Map.of("QUOTA_API_KEY_LIMIT_PERCENT", "50",
                "QUOTA_SWEEP_INTERVAL_MS", "0", "QUOTA_RECONCILE_INTERVAL_MS", "0"));
        try (QuotaFixture g = new QuotaFixture(redis, postgres, halfPerKey, START)) {
            String u = g.user("tok-key", 1_000_000, 1000, 1_000, false); // user 1,000 tokens/min, each key 500
            Decision d = g.engine.reserve(new ReserveRequest(u, "key-a", "m", 1, 10));
            g.engine.settle(d.reservationId(), 1, 500);
            assertThat(g.engine.reserve(new ReserveRequest(u, "key-a", "m", 1, 10)).rejectReason())
                    .as("key a used its 500").isEqualTo(RejectReason.RATE_LIMITED_TOKENS);
            assertThat(g.engine.reserve(new ReserveRequest(u, "key-b", "m", 1, 500)).admitted())
                    .as("key b has its own 500, the user 500 left").isTrue();
            assertThat(g.engine.reserve(new ReserveRequest(u, "key-c", "m", 1, 10)).rejectReason())
                    .as("the user's 1,000 are used up").isEqualTo(RejectReason.RATE_LIMITED_TOKENS);
        }
    }

    @Test
    void softLimitIsReachedOnceAMonthAndReportedWhileOverIt() {
        f.softLimitPercent(60);
        String u = f.user("soft", 1_000, 1, 1_000_000, false); // 1 request/min: the 4th call below is rate limited
        Decision d1 = engine.reserve(f.request(u, 300, 1));
        assertThat(d1.softLimit()).isEqualTo(new SoftLimitStatus(60, false, false));
        f.clock.advance(Duration.ofMinutes(1));
        Decision d2 = engine.reserve(f.request(u, 300, 1));
        assertThat(d2.softLimit()).as("600 of 1,000 reaches 60%").isEqualTo(new SoftLimitStatus(60, true, true));
        assertThat(d2.thresholdsCrossed()).containsExactly(50);
        f.clock.advance(Duration.ofMinutes(1));
        Decision d3 = engine.reserve(f.request(u, 100, 1));
        assertThat(d3.route()).isEqualTo(Route.SERVICE_CREDIT);
        assertThat(d3.softLimit()).as("still over it, reported once").isEqualTo(new SoftLimitStatus(60, true, false));
        Decision limited = engine.reserve(f.request(u, 1, 1));
        assertThat(limited.rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_REQUESTS);
        assertThat(limited.softLimit().reached()).isTrue();

        // Crossed by the actual cost at settle.
        String v = f.user("soft-settle", 1_000, 1000, 1_000_000, false);
        Decision small = engine.reserve(f.request(v, 100, 1));
        assertThat(small.softLimit().reached()).isFalse();
        SettleResult s = engine.settle(small.reservationId(), 700, 1);
        assertThat(s.softLimit()).isEqualTo(new SoftLimitStatus(60, true, true));
        assertThat(s.thresholdsCrossed()).containsExactly(50);
        assertThat(engine.reserve(f.request(v, 10, 1)).softLimit()).isEqualTo(new SoftLimitStatus(60, true, false));

        // Hard limit: past the credit the call goes to the user's own key; the soft limit is reached with it.
        String w = f.user("soft-hard", 1_000, 1000, 1_000_000, true);
        Decision own = engine.reserve(f.request(w, 1_500, 1));
        assertThat(own.route()).isEqualTo(Route.PERSONAL_KEY);
        assertThat(own.softLimit()).isEqualTo(new SoftLimitStatus(60, true, true));
        assertThat(own.thresholdsCrossed()).containsExactly(100);

        // A new month starts below the soft limit and reports the crossing again.
        for (Decision d : List.of(d1, d2, d3)) engine.settle(d.reservationId(), 300, 1);
        f.clock.set(Instant.parse("2026-12-01T00:00:00Z"));
        assertThat(engine.reserve(f.request(u, 100, 1)).softLimit()).isEqualTo(new SoftLimitStatus(60, false, false));
        f.clock.advance(Duration.ofMinutes(1));
        assertThat(engine.reserve(f.request(u, 600, 1)).softLimit()).isEqualTo(new SoftLimitStatus(60, true, true));
    }

    @Test
    void thresholdsAreReportedOncePerMonthAndAgainAfterRollover() {
        String u = f.user("thr", 1_000, 1000, 1_000_000, false);
        f.clock.set(Instant.parse("2026-11-30T23:59:00Z"));
        List<List<Integer>> seen = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            Decision d = engine.reserve(f.request(u, 300, 1));
            seen.add(d.thresholdsCrossed());
            if (d.reservationId() != null) ids.add(d.reservationId());
        }
        // 300 (30%), 600 (60%), 900 (90%), refused (credit exhausted -> 100), refused again (nothing new)
        assertThat(seen).containsExactly(List.of(), List.of(50), List.of(80), List.of(100), List.of());
        for (String id : ids) engine.settle(id, 300, 1);

        f.clock.set(Instant.parse("2026-12-01T00:00:01Z"));
        Decision dec = engine.reserve(f.request(u, 600, 1));
        assertThat(dec.route()).as("new month, new credit").isEqualTo(Route.SERVICE_CREDIT);
        assertThat(dec.reservationId()).contains(":2026-12:");
        assertThat(dec.thresholdsCrossed()).containsExactly(50);
        assertThat(engine.usage(u, NOV).settledNanoUsd()).isEqualTo(900);
        assertThat(engine.usage(u, YearMonth.of(2026, 12)).reservedNanoUsd()).isEqualTo(600);
        assertThat(engine.usage(u, YearMonth.of(2026, 12)).settledNanoUsd()).isZero();
        engine.release(dec.reservationId());
        // A November reservation settled in December counts for November.
        f.clock.set(Instant.parse("2026-11-30T23:59:59Z"));
        Decision lateNov = engine.reserve(f.request(u, 50, 1));
        f.clock.set(Instant.parse("2026-12-01T00:00:02Z"));
        engine.settle(lateNov.reservationId(), 50, 1);
        assertThat(engine.usage(u, NOV).settledNanoUsd()).isEqualTo(950);
    }

    @Test
    void disabledAndUnknownUsersAndBadArguments() {
        String u = f.user("off", 1_000, 1000, 1_000_000, false);
        f.disable(u);
        assertThat(engine.reserve(f.request(u, 1, 1)).rejectReason()).isEqualTo(RejectReason.ACCOUNT_DISABLED);
        assertThat(engine.reserve(f.request("nobody-" + u, 1, 1)).rejectReason()).isEqualTo(RejectReason.UNKNOWN_USER);
        assertThatThrownBy(() -> engine.usage("nobody-" + u, NOV)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("unknown userId");

        String ok = f.user("args", 1_000, 1000, 1_000_000, false);
        assertThatThrownBy(() -> engine.reserve(f.request(ok, -1, 1))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("estimatedCostNanoUsd");
        assertThatThrownBy(() -> engine.reserve(f.request(ok, Long.MAX_VALUE, 1))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("estimatedCostNanoUsd");
        assertThatThrownBy(() -> engine.reserve(f.request(ok, 1, -1))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("estimatedTokens");
        assertThatThrownBy(() -> engine.reserve(new ReserveRequest("{u:evil}", "k", "m", 1, 1)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("userId");
        Decision d = engine.reserve(f.request(ok, 10, 1));
        assertThatThrownBy(() -> engine.settle(d.reservationId(), -3, 1)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("actualCostNanoUsd");
        assertThatThrownBy(() -> engine.settle("not-an-id", 3, 1)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("reservationId");
        // Nothing was lost by the refused calls.
        assertThat(engine.settle(d.reservationId(), 7, 1).status()).isEqualTo(SettleResult.Status.SETTLED);
        assertThat(engine.usage(ok, NOV).settledNanoUsd()).isEqualTo(7);
    }

    @Test
    void scriptsAreReloadedAfterScriptFlush() {
        String u = f.user("noscript", 1_000, 1000, 1_000_000, false);
        assertThat(engine.reserve(f.request(u, 1, 1)).route()).isEqualTo(Route.SERVICE_CREDIT);
        f.redis.connection().sync().scriptFlush();
        Decision d = engine.reserve(f.request(u, 1, 1));
        assertThat(d.route()).isEqualTo(Route.SERVICE_CREDIT);
        assertThat(d.mode()).isEqualTo(DecisionMode.REDIS);
        f.redis.connection().sync().scriptFlush();
        assertThat(engine.settle(d.reservationId(), 1, 1).status()).isEqualTo(SettleResult.Status.SETTLED);
    }
}
