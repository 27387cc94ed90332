package dev.tokenmeter.edge.quota;

import dev.tokenmeter.edge.quota.QuotaScripts.Script;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.YearMonth;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Compares each user's settled service-credit usage in Redis with Postgres (usage_total_monthly) and
 * corrects drift with SET, only upwards: Postgres AHEAD of Redis means Redis lost settles (a restart,
 * eviction, fail-open calls, settles that never arrived) and is raised; Redis ahead is the sink's
 * normal lag and is left alone (lowering it would let a user overspend until the sink catches up).
 * Metrics: {@code tokenmeter.quota.reconcile.drift.nano.usd} (Postgres minus Redis, summed over the
 * users where Postgres was ahead, last pass), {@code tokenmeter.quota.reconcile.lag.nano.usd} (Redis
 * minus Postgres where Redis was ahead), {@code tokenmeter.quota.reconcile.corrections}.
 */
public final class QuotaReconciler {

    /** Outcome of one pass. */
    public record Result(int usersChecked, int raised, long driftNanoUsd, long lagNanoUsd) {}

    private final QuotaScripts scripts;
    private final UsageBaseline baseline;
    private final AtomicLong drift = new AtomicLong();
    private final AtomicLong lag = new AtomicLong();
    private final Counter corrections;

    QuotaReconciler(QuotaScripts scripts, UsageBaseline baseline, MeterRegistry meters) {
        this.scripts = scripts;
        this.baseline = baseline;
        Gauge.builder("tokenmeter.quota.reconcile.drift.nano.usd", drift, AtomicLong::get)
                .description("Postgres ahead of Redis, summed over users, last reconcile pass").register(meters);
        Gauge.builder("tokenmeter.quota.reconcile.lag.nano.usd", lag, AtomicLong::get)
                .description("Redis ahead of Postgres (sink lag), summed over users, last reconcile pass").register(meters);
        this.corrections = Counter.builder("tokenmeter.quota.reconcile.corrections")
                .description("users whose Redis settled usage was raised to Postgres").register(meters);
    }

    public Result reconcile(YearMonth month) {
        Map<String, Long> truth = baseline.serviceCreditByUser(month);
        int raised = 0;
        long d = 0;
        long l = 0;
        for (var e : truth.entrySet()) {
            QuotaKeys keys = new QuotaKeys(e.getKey());
            List<Object> out = scripts.call(Script.RECONCILE, new String[]{keys.settled(month)}, Long.toString(e.getValue()));
            long before = (Long) out.get(1);
            switch ((String) out.get(0)) {
                case "RAISED" -> {
                    raised++;
                    d += e.getValue() - before;
                    corrections.increment();
                }
                case "OK" -> l += before - e.getValue();
                default -> { } // MISSING: the next reserve rebuilds it from Postgres
            }
        }
        drift.set(d);
        lag.set(l);
        return new Result(truth.size(), raised, d, l);
    }
}
