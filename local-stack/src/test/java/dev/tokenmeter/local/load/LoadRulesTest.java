package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.csv.CsvTable;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The soak's and the burst's pass rules and the memory budget (issue 20), on made-up samples: no timing. */
class LoadRulesTest {

    @Test
    void nearZeroIsTwoSecondsOfTrafficOrAHundredEvents() {
        assertThat(LoadRules.nearZeroLag(10)).isEqualTo(100);
        assertThat(LoadRules.nearZeroLag(60)).isEqualTo(120);
        assertThat(LoadRules.nearZeroLag(0.4)).isEqualTo(100);
    }

    @Test
    void lagMustTouchNearZeroInEveryWholeMinute() {
        // samples every 10 s from 100 s to 400 s: a backlog that builds up but is worked off within each minute
        double[] t = times(100, 10, 31);
        double[] lag = new double[t.length];
        for (int i = 0; i < t.length; i++) {
            lag[i] = i % 6 == 5 ? 20 : 900;
        }
        assertThat(LoadRules.lagNotNearZeroMinutes(t, lag, 100, 400, 100)).isEmpty();

        // the third minute (220-280 s) never gets below 100
        for (int i = 0; i < t.length; i++) {
            if (t[i] >= 220 && t[i] < 280) {
                lag[i] = 150;
            }
        }
        assertThat(LoadRules.lagNotNearZeroMinutes(t, lag, 100, 400, 100))
                .singleElement().asString().startsWith("minute 3 ").contains("lowest 150");
    }

    @Test
    void aMinuteWithoutLagSamplesFailsAndAPartialLastMinuteIsNotJudged() {
        double[] t = times(0, 10, 18); // 0..170 s
        double[] lag = new double[t.length];
        for (int i = 6; i < 12; i++) {
            lag[i] = Double.NaN; // the probe failed for all of minute 2
        }
        List<String> failures = LoadRules.lagNotNearZeroMinutes(t, lag, 0, 170, 100);
        assertThat(failures).singleElement().asString().startsWith("minute 2 ").contains("no lag sample");
        lag[17] = 5000; // 170 s lies in the unfinished third minute: not judged
        assertThat(LoadRules.lagNotNearZeroMinutes(t, lag, 0, 170, 100)).hasSize(1);
    }

    @Test
    void latencyMayDriftUpToOneAndAHalfTimes() {
        LoadTally.Snapshot first = snapshot(10, 20, 40);
        assertThat(LoadRules.latencyDrift(first, snapshot(15, 30, 60))).isEmpty(); // exactly 1.5x
        assertThat(LoadRules.latencyDrift(first, snapshot(9, 19, 61)))
                .singleElement().asString().startsWith("p99 of the last window 61.0 ms");
        assertThat(LoadRules.latencyDrift(first, snapshot(16, 31, 40))).hasSize(2);
        assertThat(LoadRules.latencyDrift(first, new LoadTally.Snapshot(Map.of(), 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN)))
                .singleElement().asString().contains("not measurable");
    }

    @Test
    void flatnessJudgesOnlyThePhaseAndFailsGrowingOrUnjudgeableSeries() {
        // 0-300 s: a closed-loop maximum that warms the JVM up (RSS climbs); 300-1500 s: the soak, flat RSS and a leaking Redis
        List<List<String>> rows = new ArrayList<>();
        for (int i = 0; i <= 150; i++) {
            double t = i * 10;
            double rss = t < 300 ? 200 + t / 3 : 300 + (i % 3);
            double redis = 1e6 + (t < 300 ? 0 : (t - 300) * 1000);
            String heap = i % 6 == 0 ? "80" : "";
            rows.add(List.of(Double.toString(t), fmt(rss), fmt(redis), heap, "12"));
        }
        CsvTable table = new CsvTable(List.of("elapsed_s", "rss_mib_edge-service", "redis_used_bytes",
                "heap_after_gc_mib_edge-service", "latency_p99_ms"), rows);
        CsvTable soak = LoadRules.rowsBetween(table, 300, 1500);
        assertThat(soak.rows()).hasSize(121);
        Map<String, Flatness.Verdict> v = LoadRules.flatness(soak, Duration.ofMinutes(20), 0.02);
        assertThat(v.keySet()).containsExactly("rss_mib_edge-service", "redis_used_bytes", "heap_after_gc_mib_edge-service");
        assertThat(v.get("rss_mib_edge-service").trend()).isEqualTo(Flatness.Trend.FLAT);
        assertThat(v.get("redis_used_bytes").trend()).isEqualTo(Flatness.Trend.GROWING);
        assertThat(v.get("heap_after_gc_mib_edge-service").trend()).isEqualTo(Flatness.Trend.FLAT);
        assertThat(LoadRules.notFlat(v)).singleElement().asString().startsWith("redis_used_bytes GROWING");

        // judged over the whole table, the warm-up would count against the RSS
        assertThat(LoadRules.flatness(table, Duration.ofMinutes(25), 0.02).get("rss_mib_edge-service").trend())
                .isEqualTo(Flatness.Trend.GROWING);
        // a soak too short for a verdict fails: the rule was not shown to hold
        CsvTable shortSoak = LoadRules.rowsBetween(table, 300, 350);
        assertThat(LoadRules.notFlat(LoadRules.flatness(shortSoak, Duration.ofMinutes(20), 0.02))).hasSize(3)
                .allMatch(l -> l.contains("TOO_SHORT"));
    }

    @Test
    void drainTimeIsFromTheBurstsEndToTheFirstNearZeroSample() {
        double[] t = {100, 110, 120, 130, 140, 150};
        double[] lag = {5, 4000, 2500, Double.NaN, 90, 0};
        assertThat(LoadRules.drainSeconds(t, lag, 110, 100)).isEqualTo(30.0);
        assertThat(LoadRules.drainSeconds(t, lag, 145, 100)).isEqualTo(5.0);
        assertThat(LoadRules.drainSeconds(t, new double[] {5, 4000, 2500, 900, 800, 700}, 110, 100)).isNaN();
    }

    @Test
    void memoryIsBackWhenWithinTenPercentPlusSlack() {
        double[] t = {0, 10, 20, 30, 40, 50, 60, 70};
        double[] heap = {50, 52, 51, 120, 130, 60, 54, 55};
        double before = LoadRules.level(t, heap, 0, 20);
        double after = LoadRules.level(t, heap, 60, 70);
        assertThat(before).isEqualTo(51.0);
        assertThat(after).isEqualTo(54.5);
        assertThat(LoadRules.notBack("heap", before, after, 8)).isNull();
        assertThat(LoadRules.notBack("heap", before, LoadRules.level(t, heap, 30, 40), 8))
                .startsWith("heap: 125.000 after the burst > 64.1000 (before 51.0000");
        assertThat(LoadRules.notBack("redis_used_bytes", 2_000_000, 2_300_000, 1 << 20)).isNull();
        assertThat(LoadRules.notBack("redis_used_bytes", 2_000_000, 4_000_000, 1 << 20)).isNotNull();
        assertThat(LoadRules.notBack("heap", Double.NaN, 50, 8)).contains("not measured");
        assertThat(LoadRules.level(t, heap, 200, 300)).isNaN();
    }

    @Test
    void retryableRefusalsMustSayWhenToComeBack() {
        assertThat(LoadRules.retryAfterOk(200, null, null)).isTrue();
        assertThat(LoadRules.retryAfterOk(500, null, null)).isTrue(); // a 500 fails the run elsewhere
        assertThat(LoadRules.retryAfterOk(429, "1", "true")).isTrue();
        assertThat(LoadRules.retryAfterOk(503, " 30 ", null)).isTrue();
        assertThat(LoadRules.retryAfterOk(429, null, "true")).isFalse();
        assertThat(LoadRules.retryAfterOk(429, null, null)).isFalse();
        assertThat(LoadRules.retryAfterOk(503, "", "true")).isFalse();
        assertThat(LoadRules.retryAfterOk(429, "Wed, 21 Oct 2015 07:28:00 GMT", null)).isFalse();
        assertThat(LoadRules.retryAfterOk(429, "-1", null)).isFalse();
        // insufficient_quota: the credit is used up, the edge says not to retry and gives no time (as OpenAI does)
        assertThat(LoadRules.retryAfterOk(429, null, "false")).isTrue();
    }

    @Test
    void budgetFlagsEverySampleOverItsLimitAndIgnoresGaps() {
        MemoryBudget budget = MemoryBudget.localStack();
        assertThat(budget.limitByColumn()).containsEntry("pg_connections_edge-service", 10.0)
                .containsEntry("pg_connections_billing-sink", 4.0)
                .containsEntry("heap_after_gc_mib_aggregator-streams", 256.0)
                .containsEntry("redis_used_bytes", 256 * MemoryBudget.MIB);
        CsvTable table = new CsvTable(List.of("elapsed_s", "pg_connections_billing-sink", "rss_mib_edge-service", "fds_edge-service"),
                List.of(List.of("0", "4", "600", "9999"), List.of("10", "5", "", "1"), List.of("20", "4", "641.5", "1")));
        assertThat(budget.violations(table)).containsExactly(
                "pg_connections_billing-sink = 5.00000 at 10 s, budget 4.00000",
                "rss_mib_edge-service = 641.500 at 20 s, budget 640.000");
    }

    @Test
    void burstMayAnswer503ButNothingElse() {
        Map<LoadTally.StatusClass, Long> counts = new EnumMap<>(LoadTally.StatusClass.class);
        counts.put(LoadTally.StatusClass.S2XX, 90L);
        counts.put(LoadTally.StatusClass.S429, 5L);
        counts.put(LoadTally.StatusClass.S503, 5L);
        LoadTally.Snapshot s = new LoadTally.Snapshot(counts, 100, 1, 2, 3, 4);
        assertThat(LoadVerdict.of(s, 100, true, true, true, List.of()).passed()).isTrue();
        assertThat(LoadVerdict.of(s, 100, true, true, false, List.of()).failures()).singleElement().asString().contains("503: 5");
        assertThat(LoadVerdict.of(s, 100, true, true, true, List.of("lag not near zero")).failures()).containsExactly("lag not near zero");
        counts.put(LoadTally.StatusClass.OTHER, 1L);
        assertThat(LoadVerdict.of(new LoadTally.Snapshot(counts, 101, 1, 2, 3, 4), 101, true, true, true, List.of()).failures())
                .singleElement().asString().contains("other: 1");
    }

    private static double[] times(double from, double step, int n) {
        double[] t = new double[n];
        for (int i = 0; i < n; i++) {
            t[i] = from + i * step;
        }
        return t;
    }

    private static String fmt(double d) {
        return Double.toString(d);
    }

    private static LoadTally.Snapshot snapshot(double p50, double p90, double p99) {
        return new LoadTally.Snapshot(Map.of(LoadTally.StatusClass.S2XX, 100L), 100, p50, p90, p99, p99 * 2);
    }
}
