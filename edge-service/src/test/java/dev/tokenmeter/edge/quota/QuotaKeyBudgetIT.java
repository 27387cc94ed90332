package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.RedisEngine;
import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Issue 17, per-key monthly budgets (ADR 0081): a call must fit its key's budget as well as its user's credit, in the
 * same reserve script; settle, release and expiry true the key's spend up; a lost Redis rebuilds it from the ledger
 * plus the open reservations; FAIL_TO_DATABASE enforces it in Postgres.
 */
@ExtendWith(EnginesExtension.class)
class QuotaKeyBudgetIT {

    static final Instant START = Instant.parse("2026-11-15T12:00:00Z");
    static final YearMonth NOV = YearMonth.of(2026, 11);
    static final long BUDGET = 10_000;

    private static QuotaConfig config(Map<String, String> env) {
        return QuotaConfig.fromEnv(env).withBackgroundOff();
    }

    @Test
    void theKeyBudgetIsCheckedWithTheCreditAndSettleReleaseAndExpiryTrueItUp(RedisEngine redis, PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(Map.of("QUOTA_RESERVATION_TTL_MS", "30000")), START)) {
            String u = f.user("kb", 1_000_000, 1_000, 1_000_000_000L, false);
            Decision first = f.engine.reserve(f.keyRequest(u, 6_000, BUDGET));
            assertThat(first.route()).isEqualTo(Route.SERVICE_CREDIT);
            Decision over = f.engine.reserve(f.keyRequest(u, 5_000, BUDGET));
            assertThat(over.rejectReason()).as("6,000 open + 5,000 > the key's 10,000").isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
            assertThat(over.reservationId()).isNull();
            assertThat(f.engine.reserve(new ReserveRequest(u, "other-key", "gpt-4o-mini", 5_000, 1)).admitted())
                    .as("another key of the same user has its own (no) budget").isTrue();

            f.engine.settle(first.reservationId(), 2_000, 1); // spend 2,000
            Decision second = f.engine.reserve(f.keyRequest(u, 5_000, BUDGET)); // 7,000
            assertThat(second.admitted()).as("the settle replaced the 6,000 estimate with 2,000").isTrue();
            assertThat(f.engine.reserve(f.keyRequest(u, 4_000, BUDGET)).rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
            f.engine.release(second.reservationId()); // 2,000
            Decision third = f.engine.reserve(f.keyRequest(u, 8_000, BUDGET)); // 10,000: exactly the budget
            assertThat(third.admitted()).as("the release gave the 5,000 back; the budget itself is reachable").isTrue();
            assertThat(f.engine.reserve(f.keyRequest(u, 1, BUDGET)).rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);

            f.clock.advance(Duration.ofSeconds(31)); // third expires (and other-key's call)
            assertThat(f.engine.sweepExpired()).isEqualTo(2);
            Decision fourth = f.engine.reserve(f.keyRequest(u, 8_000, BUDGET));
            assertThat(fourth.admitted()).as("expiry freed the key's 8,000 too").isTrue();
            assertThat(f.engine.settle(third.reservationId(), 500, 1).status()).isEqualTo(SettleResult.Status.SETTLED_AFTER_EXPIRY);
            // 2,000 + 500 (late settle) + 8,000 open = 10,500: even 1 more does not fit
            assertThat(f.engine.reserve(f.keyRequest(u, 1, BUDGET)).rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
            f.engine.settle(fourth.reservationId(), 7_000, 1); // 9,500
            assertThat(f.engine.reserve(f.keyRequest(u, 500, BUDGET)).admitted()).isTrue();
            assertThat(f.engine.reserve(f.keyRequest(u, 1, BUDGET)).admitted()).isFalse();
            assertThat(f.engine.usage(u, NOV).settledNanoUsd()).as("the user's credit counts every key").isEqualTo(9_500);
        }
    }

    @Test
    void pastTheKeyBudgetACallGoesToTheUsersOwnKeyLikePastTheCredit(RedisEngine redis, PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(Map.of()), START)) {
            String u = f.user("kbown", 1_000_000, 1_000, 1_000_000_000L, true);
            assertThat(f.engine.reserve(f.keyRequest(u, 9_000, BUDGET)).route()).isEqualTo(Route.SERVICE_CREDIT);
            Decision own = f.engine.reserve(f.keyRequest(u, 2_000, BUDGET));
            assertThat(own.route()).isEqualTo(Route.PERSONAL_KEY);
            assertThat(own.thresholdsCrossed()).as("the user's credit is not exhausted: no 100 % alert").isEmpty();
        }
    }

    @Test
    void concurrentReservesNeverPassTheKeyBudget(RedisEngine redis, PostgresEngine postgres) throws Exception {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(Map.of()), START)) {
            String u = f.user("kbcrowd", 1_000_000_000L, 1_000_000, 1_000_000_000L, false);
            long estimate = 1_000;
            long budget = 123 * estimate + 456;
            List<Future<Decision>> futures = new ArrayList<>();
            ExecutorService pool = Executors.newFixedThreadPool(16);
            try {
                for (int i = 0; i < 500; i++) futures.add(pool.submit(() -> f.engine.reserve(f.keyRequest(u, estimate, budget))));
                long admitted = 0;
                for (Future<Decision> d : futures) {
                    Decision dec = d.get();
                    if (dec.admitted()) {
                        admitted++;
                    } else {
                        assertThat(dec.rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
                    }
                }
                assertThat(admitted).as("exactly what fits: one script decides").isEqualTo(123);
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void aLostRedisRebuildsTheKeySpendFromTheLedgerAndTheOpenReservations(RedisEngine redis, PostgresEngine postgres) {
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(Map.of()), START)) {
            String u = f.user("kbrebuild", 1_000_000, 1_000, 1_000_000_000L, false);
            f.ledgerRow(u, "key-" + u, NOV, "SERVICE_CREDIT", 5_000);
            f.ledgerRow(u, "key-" + u, NOV, "PERSONAL_KEY", 90_000); // not the service's money
            f.ledgerRow(u, "another", NOV, "SERVICE_CREDIT", 90_000); // not this key
            f.ledgerRow(u, "key-" + u, NOV.minusMonths(1), "SERVICE_CREDIT", 90_000); // not this month
            Decision open = f.engine.reserve(f.keyRequest(u, 3_000, BUDGET));
            assertThat(open.admitted()).as("5,000 in the ledger + 3,000").isTrue();
            assertThat(f.engine.reserve(f.keyRequest(u, 2_001, BUDGET)).rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);

            // Redis loses the key spend (and only it): rebuilt from the ledger's 5,000 plus the 3,000 still open.
            f.redis.connection().sync().del(new QuotaKeys(u).keyBudgets());
            assertThat(f.engine.reserve(f.keyRequest(u, 2_001, BUDGET)).rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
            // The open reservation was counted by the rebuild, so its settle replaces its estimate: 5,000 + 1,000.
            f.engine.settle(open.reservationId(), 1_000, 1);
            assertThat(f.engine.reserve(f.keyRequest(u, 4_000, BUDGET)).admitted()).isTrue();
            assertThat(f.engine.reserve(f.keyRequest(u, 1, BUDGET)).admitted()).isFalse();
        }
    }

    @Test
    void failToDatabaseEnforcesTheKeyBudgetInPostgres(RedisEngine redis, PostgresEngine postgres) {
        Map<String, String> env = Map.of("QUOTA_FAILURE_POLICY", "FAIL_TO_DATABASE");
        try (QuotaFixture f = new QuotaFixture(redis, postgres, config(env), START)) {
            String u = f.user("kbdb", 1_000_000, 1_000, 1_000_000_000L, false);
            f.monthlyTotal(u, NOV, "SERVICE_CREDIT", 4_000);
            f.ledgerRow(u, "key-" + u, NOV, "SERVICE_CREDIT", 4_000);
            try {
                redis.stop();
                Decision a = f.engine.reserve(f.keyRequest(u, 5_000, BUDGET));
                assertThat(a.mode()).isEqualTo(DecisionMode.DATABASE);
                assertThat(a.admitted()).as("4,000 in the ledger + 5,000").isTrue();
                Decision over = f.engine.reserve(f.keyRequest(u, 1_001, BUDGET));
                assertThat(over.rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
                assertThat(over.mode()).isEqualTo(DecisionMode.DATABASE);
                f.engine.settle(a.reservationId(), 3_000, 1); // 7,000: settled here, not in the ledger yet
                assertThat(f.engine.reserve(f.keyRequest(u, 3_001, BUDGET)).rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
                Decision last = f.engine.reserve(f.keyRequest(u, 3_000, BUDGET));
                assertThat(last.admitted()).isTrue();
                f.engine.settle(last.reservationId(), 3_000, 1); // 10,000
                // The sink writes the first settle (its event carries the reservation id): counted once, not twice.
                f.ledgerRow(u, "key-" + u, NOV, "SERVICE_CREDIT", 3_000, a.reservationId());
                assertThat(f.engine.reserve(f.keyRequest(u, 1, BUDGET)).rejectReason()).isEqualTo(RejectReason.KEY_BUDGET_EXCEEDED);
            } finally {
                redis.start();
            }
        }
    }
}
