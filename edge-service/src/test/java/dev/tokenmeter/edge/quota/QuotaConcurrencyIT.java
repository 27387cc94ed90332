package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.RedisEngine;
import java.time.Instant;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Issue 3 proof: 1,000 concurrent reserves never spend more than the credit; settles make usage exact. */
@ExtendWith(EnginesExtension.class)
class QuotaConcurrencyIT {

    @Test
    void thousandConcurrentReservesStayWithinCreditAndSettleToTheExactSum(RedisEngine redis, PostgresEngine postgres) throws Exception {
        Instant start = Instant.now();
        try (QuotaFixture f = new QuotaFixture(redis, postgres, QuotaConfig.defaults().withBackgroundOff(), start)) {
            long estimate = 1_000_000; // $0.001
            long credit = 250 * estimate + 123_456; // covers 250 of the 1,000
            String u = f.user("crowd", credit, 1_000_000, 1_000_000_000L, false);

            List<Decision> decisions = new ArrayList<>();
            try (ExecutorService pool = Executors.newFixedThreadPool(64)) {
                List<Future<Decision>> futures = new ArrayList<>();
                for (int i = 0; i < 1_000; i++) {
                    futures.add(pool.submit(() -> f.engine.reserve(f.request(u, estimate, 100))));
                }
                for (Future<Decision> fu : futures) decisions.add(fu.get(60, TimeUnit.SECONDS));
            }
            assertThat(decisions).allSatisfy(d -> assertThat(d.mode()).isEqualTo(DecisionMode.REDIS));
            List<Decision> admitted = decisions.stream().filter(Decision::admitted).toList();
            long admittedTotal = admitted.size() * estimate;
            assertThat(admittedTotal).as("admitted total within credit (+ at most one estimate)").isLessThanOrEqualTo(credit + estimate);
            assertThat(admitted).hasSize(250);
            assertThat(decisions.stream().filter(d -> !d.admitted()))
                    .allSatisfy(d -> assertThat(d.rejectReason()).isEqualTo(RejectReason.CREDIT_EXHAUSTED));
            assertThat(decisions.stream().filter(d -> d.thresholdsCrossed().contains(100)).count()).isEqualTo(1);

            // Settle two thirds with actual costs (concurrently, each twice), release the rest.
            long expected = 0;
            List<Runnable> closes = new ArrayList<>();
            for (int i = 0; i < admitted.size(); i++) {
                String id = admitted.get(i).reservationId();
                if (i % 3 == 2) {
                    closes.add(() -> f.engine.release(id));
                } else {
                    long actual = ThreadLocalRandom.current().nextLong(1, 2 * estimate);
                    expected += actual;
                    closes.add(() -> f.engine.settle(id, actual, 90));
                    closes.add(() -> f.engine.settle(id, actual, 90));
                }
            }
            try (ExecutorService pool = Executors.newFixedThreadPool(32)) {
                List<Future<?>> futures = closes.stream().map(pool::submit).<Future<?>>map(x -> x).toList();
                for (Future<?> fu : futures) fu.get(60, TimeUnit.SECONDS);
            }
            UsageSnapshot usage = f.engine.usage(u, YearMonth.from(start.atZone(java.time.ZoneOffset.UTC)));
            assertThat(usage.settledNanoUsd()).isEqualTo(expected);
            assertThat(usage.reservedNanoUsd()).isZero();
            assertThat(usage.remainingCreditNanoUsd()).isEqualTo(Math.max(0, credit - expected));
        }
    }
}
