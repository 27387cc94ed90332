package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenmeter.edge.account.Account;
import java.time.YearMonth;
import org.junit.jupiter.api.Test;

/** The fail-open limiter holds a share of each user's limits and credit. */
class LocalLimiterTest {

    private final LocalLimiter limiter = new LocalLimiter(10, 60_000);
    private final Account alice = new Account("alice", "t", "ACTIVE", 1_000_000, 100, 10_000, 80, false);
    private final QuotaKeys keys = new QuotaKeys("alice");
    private final YearMonth nov = YearMonth.of(2026, 11);

    @Test
    void admitsTheShareOfTheRequestRateThenRejectsWithRetryAfter() {
        long now = 1_000_000;
        int admitted = 0;
        Decision last = null;
        for (int i = 0; i < 15; i++) {
            last = limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 1, 1), nov, now, keys);
            if (last.admitted()) admitted++;
        }
        assertThat(admitted).isEqualTo(10);
        assertThat(last.rejectReason()).isEqualTo(RejectReason.RATE_LIMITED_REQUESTS);
        assertThat(last.retryAfter().toMillis()).isEqualTo(6_000); // 10 per minute locally
        assertThat(last.mode()).isEqualTo(DecisionMode.FAIL_OPEN);
        assertThat(limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 1, 1), nov, now + 6_000, keys).admitted()).isTrue();
    }

    @Test
    void creditShareIsSpentBySettlesAndFreedByReleases() {
        long now = 1_000_000;
        Decision a = limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 60_000, 1), nov, now, keys);
        Decision b = limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 60_000, 1), nov, now, keys);
        assertThat(a.route()).isEqualTo(Route.SERVICE_CREDIT);
        assertThat(b.rejectReason()).as("10% of 1,000,000 = 100,000").isEqualTo(RejectReason.CREDIT_EXHAUSTED);
        limiter.close(a.reservationId(), 30_000, 1, now);
        Decision c = limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 60_000, 1), nov, now + 10_000, keys);
        assertThat(c.route()).isEqualTo(Route.SERVICE_CREDIT);
        assertThat(c.remainingCreditNanoUsd()).isEqualTo(10_000);
        limiter.close(c.reservationId(), -1, -1, now + 10_000);
        assertThat(limiter.close(c.reservationId(), -1, -1, now + 10_000).status()).isEqualTo(SettleResult.Status.UNKNOWN_RESERVATION);
        assertThat(limiter.openReservations()).isZero();
    }

    @Test
    void settleTruesUpTheLocalTokenRate() {
        long now = 1_000_000; // local share: 10% of 10,000 tokens/min = 1,000, one token per 60 ms
        Decision small = limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 1, 100), nov, now, keys);
        limiter.close(small.reservationId(), 1, 1_000, now);
        Decision next = limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 1, 100), nov, now, keys);
        assertThat(next.rejectReason()).as("the call used the whole local bucket").isEqualTo(RejectReason.RATE_LIMITED_TOKENS);
        assertThat(next.retryAfter().toMillis()).isEqualTo(6_000);

        long later = now + 120_000;
        Decision big = limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 1, 900), nov, later, keys);
        assertThat(limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 1, 900), nov, later, keys).admitted()).isFalse();
        limiter.close(big.reservationId(), 1, 50, later);
        assertThat(limiter.reserve(alice, new ReserveRequest("alice", "k", "m", 1, 900), nov, later, keys).admitted())
                .as("850 unused tokens given back").isTrue();
    }
}
