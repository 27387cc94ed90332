package dev.tokenmeter.edge.quota;

import dev.tokenmeter.edge.quota.QuotaScripts.Script;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Clock;
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
 * minus Postgres where Redis was ahead), {@code tokenmeter.quota.reconcile.corrections}, and, when the passes are
 * scheduled, {@code tokenmeter.quota.reconcile.last.completed.timestamp.seconds}: the start of the last scheduled pass
 * that completed over all its months (its initial value is the engine's start). After such a pass Redis is at least
 * what Postgres held when the pass began, so now minus that time bounds how long Redis may have been behind Postgres
 * uncorrected: the alert QuotaReconcilerBehind (docker/prometheus/rules.yml) fires when it passes 10 minutes.
 */
public final class QuotaReconciler {

    /** Outcome of one pass. */
    public record Result(int usersChecked, int raised, long driftNanoUsd, long lagNanoUsd) {}

    private final QuotaScripts scripts;
    private final UsageBaseline baseline;
    private final AtomicLong drift = new AtomicLong();
    private final AtomicLong lag = new AtomicLong();
    private final Counter corrections;
    private final Clock clock;
    private final AtomicLong lastCompletedPassEpochMs;

    /** @param scheduled whether passes run on a schedule (only then is the last completed pass's time exported) */
    QuotaReconciler(QuotaScripts scripts, UsageBaseline baseline, MeterRegistry meters, Clock clock, boolean scheduled) {
        this.scripts = scripts;
        this.baseline = baseline;
        this.clock = clock;
        this.lastCompletedPassEpochMs = new AtomicLong(clock.millis());
        if (scheduled) {
            Gauge.builder("tokenmeter.quota.reconcile.last.completed.timestamp.seconds", lastCompletedPassEpochMs, ms -> ms.get() / 1000.0)
                    .description("Start of the last reconcile pass that completed (Unix seconds; initially the engine's start)")
                    .register(meters);
        }
        Gauge.builder("tokenmeter.quota.reconcile.drift.nano.usd", drift, AtomicLong::get)
                .description("Postgres ahead of Redis, summed over users, last reconcile pass").register(meters);
        Gauge.builder("tokenmeter.quota.reconcile.lag.nano.usd", lag, AtomicLong::get)
                .description("Redis ahead of Postgres (sink lag), summed over users, last reconcile pass").register(meters);
        this.corrections = Counter.builder("tokenmeter.quota.reconcile.corrections")
                .description("users whose Redis settled usage was raised to Postgres").register(meters);
    }

    /**
     * One scheduled pass: each month in turn. Only when every month completed is the pass's start recorded; a pass
     * that throws (Redis or Postgres away) leaves the previous time, so the gauge's age keeps growing.
     */
    public void reconcileAll(YearMonth... months) {
        long startedEpochMs = clock.millis();
        for (YearMonth month : months) {
            reconcile(month);
        }
        lastCompletedPassEpochMs.set(startedEpochMs);
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
