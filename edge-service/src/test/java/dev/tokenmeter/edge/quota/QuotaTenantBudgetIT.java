package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.redis.EmbeddedRedisCluster;
import io.lettuce.core.cluster.SlotHash;
import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Issue 17, tenant monthly budgets (ADR 0081): the tenant's spend lives in its own slot {t:<tenant>}; a reserve runs
 * the tenant's script first (check and count, atomically), then the user's with the same id. Concurrent reserves of
 * many users never admit more than the tenant's budget, settles make its spend exact, user-side refusals and
 * releases give the tenant its estimate back at once, the tenant-side expiry frees what nobody closes, a lost spend
 * is rebuilt from the ledger plus the open reservations, and all of it works on Redis Cluster.
 */
@ExtendWith(EnginesExtension.class)
class QuotaTenantBudgetIT {

    static final Instant START = Instant.parse("2026-11-15T12:00:00Z");
    static final YearMonth NOV = YearMonth.of(2026, 11);
    static final long RICH = 1_000_000_000_000L; // a user credit that never limits these tests

    private static QuotaConfig config(Map<String, String> env) {
        return QuotaConfig.fromEnv(env).withBackgroundOff();
    }

    @Test
    void thousandConcurrentReservesOfFiftyUsersNeverPassTheTenantBudgetAndSettlesMakeItExact(RedisEngine redis,
                                                                                           PostgresEngine postgres) throws Exception {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(Map.of()), START)) {
            crowd(f, Names.unique("tcrowd"), 50, 20);
        }
    }

    @Test
    void onRedisClusterTheTenantSlotAndTheUsersSlotsWorkTogether(PostgresEngine postgres) throws Exception {
        try (EmbeddedRedisCluster cluster = EmbeddedRedisCluster.launch(3, 1);
             QuotaFixture f = new QuotaFixture(cluster.uri(), postgres, config(Map.of()), START)) {
            assertThat(f.redis.commands().cluster()).isTrue();
            List<String> users = crowd(f, Names.unique("tcl"), 30, 10);
            Set<Integer> masters = new HashSet<>();
            for (String u : users) masters.add(cluster.masterOf(SlotHash.getSlot("{u:" + u + "}")).port());
            assertThat(masters).as("the tenant's users live on every master, its spend on one").hasSize(3);
        }
    }

    /**
     * {@code usersCount} users of one tenant reserve {@code perUser} calls each, all at once, estimates of 0.5 to 1.5
     * million nano-USD; the tenant's budget covers about a quarter. Returns the users.
     */
    private static List<String> crowd(QuotaFixture f, String tenant, int usersCount, int perUser) throws Exception {
        List<String> users = new ArrayList<>();
        for (int i = 0; i < usersCount; i++) users.add(f.user("tu", tenant, RICH, 1_000_000, 1_000_000_000L, false));
        int calls = usersCount * perUser;
        long maxEstimate = 1_500_000;
        long budget = calls / 4 * 1_000_000L + 123_456;
        List<Long> estimates = new ArrayList<>();
        for (int i = 0; i < calls; i++) estimates.add(ThreadLocalRandom.current().nextLong(500_000, maxEstimate + 1));

        List<Decision> decisions = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(64)) {
            List<Future<Decision>> futures = new ArrayList<>();
            for (int i = 0; i < calls; i++) {
                String u = users.get(i % usersCount);
                long est = estimates.get(i);
                futures.add(pool.submit(() -> f.engine.reserve(f.tenantRequest(u, est, budget))));
            }
            for (Future<Decision> fu : futures) decisions.add(fu.get(120, TimeUnit.SECONDS));
        }
        assertThat(decisions).allSatisfy(d -> assertThat(d.mode()).isEqualTo(DecisionMode.REDIS));
        long admittedSum = 0;
        List<Integer> admitted = new ArrayList<>();
        for (int i = 0; i < calls; i++) {
            Decision d = decisions.get(i);
            if (d.admitted()) {
                assertThat(d.route()).isEqualTo(Route.SERVICE_CREDIT);
                admitted.add(i);
                admittedSum += estimates.get(i);
            } else {
                assertThat(d.rejectReason()).isEqualTo(RejectReason.TENANT_BUDGET_EXCEEDED);
            }
        }
        assertThat(admittedSum).as("admitted estimates never pass the tenant's budget").isLessThanOrEqualTo(budget);
        assertThat(budget - admittedSum).as("and a refused call really did not fit: less than one estimate is left")
                .isLessThan(maxEstimate);
        assertThat(admitted.size()).as("some admitted, some refused").isBetween(1, calls - 1);
        assertThat(f.engine.tenantSpend(tenant, NOV)).as("the tenant's spend counts the open estimates").isEqualTo(admittedSum);

        // Settle two thirds (actual up to twice the estimate, each settle sent twice, concurrently), release the rest.
        long expected = 0;
        List<Runnable> closes = new ArrayList<>();
        for (int n = 0; n < admitted.size(); n++) {
            String id = decisions.get(admitted.get(n)).reservationId();
            if (n % 3 == 2) {
                closes.add(() -> f.engine.release(id));
            } else {
                long actual = ThreadLocalRandom.current().nextLong(1, 2 * estimates.get(admitted.get(n)));
                expected += actual;
                closes.add(() -> f.engine.settle(id, actual, 1));
                closes.add(() -> f.engine.settle(id, actual, 1));
            }
        }
        try (ExecutorService pool = Executors.newFixedThreadPool(32)) {
            List<Future<?>> futures = closes.stream().map(pool::submit).<Future<?>>map(x -> x).toList();
            for (Future<?> fu : futures) fu.get(120, TimeUnit.SECONDS);
        }
        assertThat(f.engine.tenantSpend(tenant, NOV)).as("settles bring the tenant's spend to the exact sum").isEqualTo(expected);
        long users0 = 0;
        for (String u : users) {
            UsageSnapshot s = f.engine.usage(u, NOV);
            assertThat(s.reservedNanoUsd()).isZero();
            users0 += s.settledNanoUsd();
        }
        assertThat(users0).as("the users' settled sums are the tenant's").isEqualTo(expected);
        // Past the budget (settles above their estimates may have passed it) nothing more is admitted; below it, what fits is.
        long left = budget - expected;
        Decision next = f.engine.reserve(f.tenantRequest(users.get(0), Math.max(1, left + 1), budget));
        assertThat(next.rejectReason()).isEqualTo(RejectReason.TENANT_BUDGET_EXCEEDED);
        if (left > 0) {
            Decision fits = f.engine.reserve(f.tenantRequest(users.get(1), left, budget));
            assertThat(fits.admitted()).as("exactly the budget's rest fits").isTrue();
            f.engine.release(fits.reservationId());
        }
        assertThat(f.engine.tenantSpend(tenant, NOV)).isEqualTo(expected);
        return users;
    }

    @Test
    void aUserSideRefusalOrPersonalKeyRouteOrReleaseGivesTheTenantItsEstimateBackAtOnce(RedisEngine redis,
                                                                                       PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(Map.of()), START)) {
            String tenant = Names.unique("tref");
            long budget = 10_000;
            String poor = f.user("tpoor", tenant, 5_000, 1_000, 1_000_000_000L, false);
            String own = f.user("town", tenant, 5_000, 1_000, 1_000_000_000L, true);
            String rich = f.user("trich", tenant, RICH, 1_000, 1_000_000_000L, false);

            assertThat(f.engine.reserve(f.tenantRequest(poor, 6_000, budget)).rejectReason())
                    .as("the user's own credit refuses it").isEqualTo(RejectReason.CREDIT_EXHAUSTED);
            assertThat(f.engine.tenantSpend(tenant, NOV)).as("the tenant got the 6,000 back").isZero();
            Decision personal = f.engine.reserve(f.tenantRequest(own, 6_000, budget));
            assertThat(personal.route()).as("past its credit, to the user's own key").isEqualTo(Route.PERSONAL_KEY);
            assertThat(f.engine.tenantSpend(tenant, NOV)).as("not the service's money: not the tenant's spend").isZero();
            assertThat(f.engine.reserve(new ReserveRequest(rich, "key-" + rich, "gpt-4o-mini", 6_000, 1, 5_000, budget))
                    .rejectReason()).as("the key's budget refuses it").isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
            assertThat(f.engine.tenantSpend(tenant, NOV)).isZero();

            Decision a = f.engine.reserve(f.tenantRequest(rich, 9_000, budget));
            assertThat(a.route()).isEqualTo(Route.SERVICE_CREDIT);
            assertThat(f.engine.reserve(f.tenantRequest(poor, 2_000, budget)).rejectReason())
                    .as("another user of the tenant: 9,000 + 2,000 > 10,000").isEqualTo(RejectReason.TENANT_BUDGET_EXCEEDED);
            assertThat(f.engine.reserve(f.tenantRequest(own, 2_000, budget)).route())
                    .as("past the tenant's budget a user with an own key goes there").isEqualTo(Route.PERSONAL_KEY);
            assertThat(f.engine.reserve(f.tenantRequest(poor, 1_000, budget)).admitted()).as("exactly the budget").isTrue();
            f.engine.release(a.reservationId());
            f.engine.release(a.reservationId()); // a repeat gives nothing back twice
            assertThat(f.engine.tenantSpend(tenant, NOV)).as("the release gave 9,000 back").isEqualTo(1_000);
            Decision b = f.engine.reserve(f.tenantRequest(rich, 9_000, budget));
            assertThat(b.admitted()).isTrue();
            f.engine.settle(b.reservationId(), 4_000, 1);
            assertThat(f.engine.tenantSpend(tenant, NOV)).as("1,000 open + 4,000 settled").isEqualTo(5_000);
            assertThat(f.engine.usage(poor, NOV).settledNanoUsd()).isZero();
        }
    }

    @Test
    void theTenantSideExpiryFreesWhatNobodyClosesAndALateSettleStillCounts(RedisEngine redis, PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(Map.of("QUOTA_RESERVATION_TTL_MS", "30000")), START)) {
            String tenant = Names.unique("texp");
            long budget = 10_000;
            String u = f.user("te1", tenant, RICH, 1_000, 1_000_000_000L, false);
            String v = f.user("te2", tenant, RICH, 1_000, 1_000_000_000L, false);
            Decision a = f.engine.reserve(f.tenantRequest(u, 6_000, budget));
            Decision lost = f.engine.reserve(f.tenantRequest(u, 4_000, budget));
            assertThat(a.admitted()).isTrue();
            assertThat(lost.admitted()).isTrue();
            // The user's record of `lost` is gone (as if the edge died between the tenant's and the user's script):
            // only the tenant-side expiry can free its 4,000.
            f.redis.connection().sync().hdel(new QuotaKeys(u).reservations(), lost.reservationId());
            assertThat(f.engine.reserve(f.tenantRequest(v, 1, budget)).rejectReason()).isEqualTo(RejectReason.TENANT_BUDGET_EXCEEDED);

            f.clock.advance(Duration.ofSeconds(31));
            Decision c = f.engine.reserve(f.tenantRequest(v, 10_000, budget));
            assertThat(c.admitted()).as("another user's reserve expired both of u's tenant reservations first").isTrue();
            assertThat(f.engine.sweepExpired()).as("the user side of `a` expires too (and `lost`'s deadline entry goes)").isEqualTo(2);
            assertThat(f.engine.settle(a.reservationId(), 500, 1).status()).isEqualTo(SettleResult.Status.SETTLED_AFTER_EXPIRY);
            assertThat(f.engine.tenantSpend(tenant, NOV)).as("10,000 open + the late 500").isEqualTo(10_500);
            assertThat(f.engine.settle(lost.reservationId(), 4_000, 1).status()).isEqualTo(SettleResult.Status.UNKNOWN_RESERVATION);
            f.engine.settle(c.reservationId(), 9_000, 1);
            assertThat(f.engine.tenantSpend(tenant, NOV)).isEqualTo(9_500);
            assertThat(f.engine.reserve(f.tenantRequest(u, 501, budget)).rejectReason()).isEqualTo(RejectReason.TENANT_BUDGET_EXCEEDED);
            assertThat(f.engine.reserve(f.tenantRequest(u, 500, budget)).admitted()).isTrue();
        }
    }

    @Test
    void aMissingTenantSpendIsRebuiltFromTheLedgerAndTheOpenReservations(RedisEngine redis, PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(Map.of()), START)) {
            String tenant = Names.unique("treb");
            long budget = 10_000;
            String u = f.user("tr1", tenant, RICH, 1_000, 1_000_000_000L, false);
            String v = f.user("tr2", tenant, RICH, 1_000, 1_000_000_000L, false);
            f.ledgerRow(tenant, u, "key-" + u, NOV, "SERVICE_CREDIT", 3_000, null);
            f.ledgerRow(tenant, v, "key-" + v, NOV, "SERVICE_CREDIT", 2_000, null);
            f.ledgerRow(tenant, v, "key-" + v, NOV, "PERSONAL_KEY", 90_000, null); // not the service's money
            f.ledgerRow(tenant, v, "key-" + v, NOV.minusMonths(1), "SERVICE_CREDIT", 90_000, null); // not this month
            f.ledgerRow("t1", "someone", "k", NOV, "SERVICE_CREDIT", 90_000, null); // not this tenant
            Decision open = f.engine.reserve(f.tenantRequest(u, 3_000, budget));
            assertThat(open.admitted()).as("5,000 in the ledger + 3,000").isTrue();
            assertThat(f.engine.tenantSpend(tenant, NOV)).isEqualTo(8_000);
            assertThat(f.engine.reserve(f.tenantRequest(v, 2_001, budget)).rejectReason()).isEqualTo(RejectReason.TENANT_BUDGET_EXCEEDED);

            f.engine.forgetTenantSpend(tenant); // Redis lost it (or the admin API changed the budget)
            assertThat(f.engine.tenantSpend(tenant, NOV)).as("without Redis's count: the ledger").isEqualTo(5_000);
            assertThat(f.engine.reserve(f.tenantRequest(v, 2_001, budget)).rejectReason())
                    .as("rebuilt: the ledger's 5,000 plus the 3,000 still open").isEqualTo(RejectReason.TENANT_BUDGET_EXCEEDED);
            f.engine.settle(open.reservationId(), 1_000, 1);
            assertThat(f.engine.tenantSpend(tenant, NOV)).as("the open reservation's estimate was replaced").isEqualTo(6_000);
            assertThat(f.engine.reserve(f.tenantRequest(v, 4_000, budget)).admitted()).isTrue();
            assertThat(f.engine.reserve(f.tenantRequest(u, 1, budget)).admitted()).isFalse();
            assertThat(f.engine.reserve(f.tenantRequest(u, 1, ReserveRequest.NO_TENANT_BUDGET)).admitted())
                    .as("without a budget the tenant's spend is not looked at").isTrue();
        }
    }
}
