package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.csv.CsvTable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The soak's and the burst's pass rules (issue 20) as pure functions of the samples (times in seconds since the
 * sampler started) and of the load's tallies; the load program prints what they return and fails on any failure.
 */
final class LoadRules {

    /** "Near zero" consumer lag: at most this many seconds of the load's traffic behind … */
    static final double NEAR_ZERO_LAG_SECONDS = 2;
    /** … or this many events, whichever is more (one batch of the sink at a low rate). */
    static final long NEAR_ZERO_LAG_FLOOR = 100;
    /** Latency percentiles of the last window may be at most this multiple of the first window's. */
    static final double LATENCY_DRIFT_FACTOR = 1.5;
    /** The burst's lag must be near zero again within this time after the burst ends. */
    static final Duration BURST_DRAIN_LIMIT = Duration.ofSeconds(60);
    /** Memory "back to its level": the level after the burst at most 10 % above the level before … */
    static final double BACK_RELATIVE = 0.10;
    /** … plus an absolute slack per series kind (a live set moves by a few MiB between full collections). */
    static final double BACK_HEAP_SLACK_MIB = 8;
    static final double BACK_REDIS_SLACK_BYTES = 1024 * 1024;

    private LoadRules() {
    }

    /** The total lag (aggregator + sink) that counts as near zero at {@code ratePerSecond}. */
    static long nearZeroLag(double ratePerSecond) {
        return Math.max(NEAR_ZERO_LAG_FLOOR, Math.round(ratePerSecond * NEAR_ZERO_LAG_SECONDS));
    }

    /**
     * "Consumer lag returns to near zero every minute": for each whole minute {@code [from + 60k, from + 60(k+1))} of
     * {@code [from, to)}, at least one lag sample in it is at or below {@code nearZero}. A minute without a lag
     * sample (a failing probe) fails too: it was not seen to return. Returns one line per failing minute.
     */
    static List<String> lagNotNearZeroMinutes(double[] t, double[] lag, double from, double to, long nearZero) {
        List<String> failures = new ArrayList<>();
        int minutes = (int) Math.floor((to - from) / 60);
        for (int k = 0; k < minutes; k++) {
            double start = from + 60.0 * k;
            double end = start + 60;
            double min = Double.NaN;
            for (int i = 0; i < t.length; i++) {
                if (t[i] >= start && t[i] < end && !Double.isNaN(lag[i])) {
                    min = Double.isNaN(min) ? lag[i] : Math.min(min, lag[i]);
                }
            }
            if (Double.isNaN(min)) {
                failures.add(String.format(Locale.ROOT, "minute %d (%.0f–%.0f s): no lag sample", k + 1, start, end));
            } else if (min > nearZero) {
                failures.add(String.format(Locale.ROOT, "minute %d (%.0f–%.0f s): lag never below %d (lowest %.0f)",
                        k + 1, start, end, nearZero, min));
            }
        }
        return failures;
    }

    /** p50, p90 and p99 of {@code last} each at most {@link #LATENCY_DRIFT_FACTOR} × the same of {@code first}. */
    static List<String> latencyDrift(LoadTally.Snapshot first, LoadTally.Snapshot last) {
        List<String> failures = new ArrayList<>();
        if (first.answers() == 0 || last.answers() == 0) {
            failures.add("latency drift not measurable: " + first.answers() + " answers in the first window, "
                    + last.answers() + " in the last");
            return failures;
        }
        double[][] pairs = {{50, first.p50Ms(), last.p50Ms()}, {90, first.p90Ms(), last.p90Ms()}, {99, first.p99Ms(), last.p99Ms()}};
        for (double[] p : pairs) {
            if (p[2] > LATENCY_DRIFT_FACTOR * p[1]) {
                failures.add(String.format(Locale.ROOT, "p%.0f of the last window %.1f ms > %.1f x the first's %.1f ms",
                        p[0], p[2], LATENCY_DRIFT_FACTOR, p[1]));
            }
        }
        return failures;
    }

    /** The rows with {@code from <= t <= to}: a table of one phase, so Flatness judges only that phase's samples. */
    static CsvTable rowsBetween(CsvTable table, double from, double to) {
        double[] t = table.numbers(Charts.TIME_COLUMN);
        List<List<String>> rows = new ArrayList<>();
        for (int i = 0; i < t.length; i++) {
            if (t[i] >= from && t[i] <= to) {
                rows.add(table.rows().get(i));
            }
        }
        return new CsvTable(table.columns(), rows);
    }

    /** The columns the soak requires flat: heap after GC, RSS and fds per JVM, Redis memory, Postgres connections. */
    static boolean mustBeFlat(String column) {
        return column.startsWith("heap_after_gc_mib_") || column.startsWith("rss_mib_") || column.startsWith("fds_")
                || column.startsWith("pg_connections_") || column.equals("redis_used_bytes");
    }

    /** Flatness of each {@link #mustBeFlat} column of {@code phase} over its last {@code window}, by column. */
    static Map<String, Flatness.Verdict> flatness(CsvTable phase, Duration window, double relativeFloor) {
        Map<String, Flatness.Verdict> verdicts = new LinkedHashMap<>();
        double[] t = phase.numbers(Charts.TIME_COLUMN);
        for (String column : phase.columns()) {
            if (mustBeFlat(column)) {
                verdicts.put(column, Flatness.judge(t, phase.numbers(column), window, relativeFloor));
            }
        }
        return verdicts;
    }

    /** A failure line per column that is not FLAT (growing, or too short to say: the soak must give a verdict). */
    static List<String> notFlat(Map<String, Flatness.Verdict> verdicts) {
        List<String> failures = new ArrayList<>();
        verdicts.forEach((column, v) -> {
            if (!v.flat()) {
                failures.add(column + " " + v);
            }
        });
        return failures;
    }

    /**
     * Seconds from {@code burstEnd} until the first lag sample at or after it that is at or below {@code nearZero};
     * NaN when none is.
     */
    static double drainSeconds(double[] t, double[] lag, double burstEnd, long nearZero) {
        for (int i = 0; i < t.length; i++) {
            if (t[i] >= burstEnd && !Double.isNaN(lag[i]) && lag[i] <= nearZero) {
                return t[i] - burstEnd;
            }
        }
        return Double.NaN;
    }

    /** The median of the non-NaN values with {@code from <= t <= to}; NaN when there are none. */
    static double level(double[] t, double[] y, double from, double to) {
        double[] in = new double[t.length];
        int n = 0;
        for (int i = 0; i < t.length; i++) {
            if (t[i] >= from && t[i] <= to && !Double.isNaN(y[i])) {
                in[n++] = y[i];
            }
        }
        return n == 0 ? Double.NaN : Flatness.median(Arrays.copyOf(in, n));
    }

    /**
     * "Memory back to its level before": {@code after <= before × (1 + BACK_RELATIVE) + slack}. A level that could
     * not be measured (no samples in a window) fails: the rule was not shown to hold.
     */
    static String notBack(String column, double before, double after, double slack) {
        if (Double.isNaN(before) || Double.isNaN(after)) {
            return column + ": level not measured (before " + before + ", after " + after + ")";
        }
        double limit = before * (1 + BACK_RELATIVE) + slack;
        return after <= limit ? null : String.format(Locale.ROOT, "%s: %.6g after the burst > %.6g (before %.6g × %.2f + %.3g)",
                column, after, limit, before, 1 + BACK_RELATIVE, slack);
    }

    /**
     * A 429 or 503 that may be retried must say when: a {@code Retry-After} of whole seconds ≥ 0 (RFC 9110 also
     * allows an HTTP date, which the edge never sends). One that says not to retry ({@code x-should-retry: false}:
     * OpenAI's {@code insufficient_quota} 429, the monthly credit is used up) needs none — it is not a capacity
     * refusal, and no wait makes it succeed. Other statuses need none.
     */
    static boolean retryAfterOk(int status, String retryAfter, String shouldRetry) {
        if (status != 429 && status != 503) {
            return true;
        }
        if ("false".equalsIgnoreCase(shouldRetry == null ? null : shouldRetry.strip())) {
            return true;
        }
        if (retryAfter == null || retryAfter.isBlank()) {
            return false;
        }
        try {
            return Long.parseLong(retryAfter.strip()) >= 0;
        } catch (NumberFormatException e) {
            return false;
        }
    }
}
