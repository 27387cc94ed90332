package dev.tokenmeter.local.load;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The load program's pure parts (issue 20): arguments, the open-loop schedule, the tally, the pass/fail rule. */
class LoadProgramPartsTest {

    private static final Path OUT = Path.of("out");

    @Test
    void steadyArgumentsAndDefaults() {
        LoadArgs a = LoadArgs.parse(new String[] {"steady", "--rate", "25", "--minutes", "0.5", "--out", "/tmp/x"}, "5", OUT);
        assertThat(a.scenario()).isEqualTo(LoadArgs.Scenario.STEADY);
        assertThat(a.ratePerSecond()).isEqualTo(25);
        assertThat(a.duration()).isEqualTo(Duration.ofSeconds(30));
        assertThat(a.out()).isEqualTo(Path.of("/tmp/x"));
        assertThat(a.sampleInterval()).isEqualTo(Duration.ofSeconds(5));

        LoadArgs d = LoadArgs.parse(new String[] {"steady"}, null, OUT);
        assertThat(d.ratePerSecond()).isEqualTo(LoadArgs.DEFAULT_RATE);
        assertThat(d.duration()).isEqualTo(Duration.ofMinutes(2));
        assertThat(d.out()).isEqualTo(OUT);
        assertThat(d.sampleInterval()).isEqualTo(Duration.ofSeconds(10));
    }

    @Test
    void maxArguments() {
        LoadArgs a = LoadArgs.parse(new String[] {"max", "--seconds", "12", "--concurrency", "4"}, null, OUT);
        assertThat(a.scenario()).isEqualTo(LoadArgs.Scenario.MAX);
        assertThat(a.duration()).isEqualTo(Duration.ofSeconds(12));
        assertThat(a.concurrency()).isEqualTo(4);
        assertThat(LoadArgs.parse(new String[] {"max"}, null, OUT).duration()).isEqualTo(Duration.ofSeconds(30));
    }

    @Test
    void soakArgumentsMeasureTheMaximumFirstUnlessARateIsGiven() {
        LoadArgs d = LoadArgs.parse(new String[] {"soak"}, null, OUT);
        assertThat(d.scenario()).isEqualTo(LoadArgs.Scenario.SOAK);
        assertThat(d.duration()).isEqualTo(Duration.ofMinutes(30));
        assertThat(d.maxDuration()).isEqualTo(Duration.ofSeconds(60));
        assertThat(d.ratePerSecond()).as("0 = half the measured maximum").isZero();
        LoadArgs a = LoadArgs.parse(new String[] {"soak", "--minutes", "3", "--max-seconds", "20", "--concurrency", "8",
                "--rate", "40"}, null, OUT);
        assertThat(a.duration()).isEqualTo(Duration.ofMinutes(3));
        assertThat(a.maxDuration()).isEqualTo(Duration.ofSeconds(20));
        assertThat(a.concurrency()).isEqualTo(8);
        assertThat(a.ratePerSecond()).isEqualTo(40);
    }

    @Test
    void burstArgumentsNameEachPhase() {
        LoadArgs d = LoadArgs.parse(new String[] {"burst"}, null, OUT);
        assertThat(d.scenario()).isEqualTo(LoadArgs.Scenario.BURST);
        assertThat(List.of(d.duration(), d.burstDuration(), d.afterDuration()))
                .containsExactly(Duration.ofMinutes(5), Duration.ofMinutes(2), Duration.ofMinutes(5));
        assertThat(d.ratePerSecond()).as("0 = 5 % of the measured maximum").isZero();
        LoadArgs a = LoadArgs.parse(new String[] {"burst", "--base-minutes", "1", "--burst-minutes", "0.5",
                "--after-minutes", "2", "--rate", "3"}, null, OUT);
        assertThat(List.of(a.duration(), a.burstDuration(), a.afterDuration()))
                .containsExactly(Duration.ofMinutes(1), Duration.ofSeconds(30), Duration.ofMinutes(2));
        assertThat(a.ratePerSecond()).isEqualTo(3);
        assertThat(d.basePercent()).as("the 20x burst is 100 %% of the maximum by default").isEqualTo(5.0);
        assertThat(d.edgeMaxInFlight()).as("0 = the edge's own MAX_CALLS_IN_FLIGHT").isZero();
        LoadArgs beyond = LoadArgs.parse(new String[] {"burst", "--base-percent", "10", "--edge-max-in-flight", "48"}, null, OUT);
        assertThat(beyond.basePercent()).isEqualTo(10.0);
        assertThat(beyond.edgeMaxInFlight()).isEqualTo(48);
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"burst", "--base-percent", "101"}, null, OUT))
                .hasMessageContaining("--base-percent must be at most 100");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"soak", "--base-percent", "10"}, null, OUT))
                .hasMessageContaining("unknown option --base-percent for soak");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"burst", "--minutes", "3"}, null, OUT))
                .hasMessageContaining("unknown option --minutes for burst");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"soak", "--burst-minutes", "3"}, null, OUT))
                .hasMessageContaining("unknown option --burst-minutes for soak");
    }

    @Test
    void badArgumentsNameWhatIsWrong() {
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {}, null, OUT)).hasMessageContaining("no scenario");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"spike"}, null, OUT)).hasMessageContaining("unknown scenario spike");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"steady", "--rate", "0"}, null, OUT)).hasMessageContaining("--rate");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"steady", "--rate", "x"}, null, OUT)).hasMessageContaining("'x'");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"steady", "--rate"}, null, OUT)).hasMessageContaining("needs a value");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"steady", "--concurrency", "3"}, null, OUT))
                .hasMessageContaining("unknown option --concurrency for steady");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"max", "--minutes", "3"}, null, OUT))
                .hasMessageContaining("unknown option --minutes for max");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"steady"}, "-1", OUT)).hasMessageContaining("load.sampleSeconds");
        assertThatThrownBy(() -> LoadArgs.parse(new String[] {"steady", "--minutes", "NaN"}, null, OUT)).hasMessageContaining("--minutes");
    }

    @Test
    void scheduleIsExactWithoutDrift() {
        OpenLoopSchedule s = new OpenLoopSchedule(3, Duration.ofSeconds(2));
        assertThat(s.count()).isEqualTo(6);
        assertThat(s.dueOffsetNanos(0)).isZero();
        assertThat(s.dueOffsetNanos(1)).isEqualTo(333_333_333L);
        assertThat(s.dueOffsetNanos(3)).isEqualTo(1_000_000_000L); // no accumulated rounding of 1/3 s
        assertThat(s.dueOffsetNanos(5)).isEqualTo(1_666_666_666L);
        assertThatThrownBy(() -> s.dueOffsetNanos(6)).isInstanceOf(IndexOutOfBoundsException.class);

        OpenLoopSchedule big = new OpenLoopSchedule(2000, Duration.ofMinutes(30));
        assertThat(big.count()).isEqualTo(3_600_000);
        assertThat(big.dueOffsetNanos(big.count() - 1)).isEqualTo(1_799_999_500_000L);
    }

    @Test
    void scheduleRoundsDownButSendsAtLeastOne() {
        assertThat(new OpenLoopSchedule(10, Duration.ofMillis(250)).count()).isEqualTo(2);
        assertThat(new OpenLoopSchedule(1, Duration.ofMillis(10)).count()).isEqualTo(1);
        assertThatThrownBy(() -> new OpenLoopSchedule(0, Duration.ofSeconds(1))).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new OpenLoopSchedule(1, Duration.ZERO)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void percentilesAreNearestRank() {
        long[] ms = new long[100];
        for (int i = 0; i < 100; i++) {
            ms[i] = (i + 1) * 1_000_000L; // 1..100 ms
        }
        assertThat(LoadTally.percentileMs(ms, 50)).isEqualTo(50.0);
        assertThat(LoadTally.percentileMs(ms, 90)).isEqualTo(90.0);
        assertThat(LoadTally.percentileMs(ms, 99)).isEqualTo(99.0);
        assertThat(LoadTally.percentileMs(new long[] {7_000_000L}, 99)).isEqualTo(7.0);
        assertThat(LoadTally.percentileMs(new long[] {}, 50)).isNaN();
    }

    @Test
    void tallySplitsIntervalsAndKeepsTheTotal() {
        LoadTally t = new LoadTally();
        t.record(200, 10_000_000L);
        t.record(429, 2_000_000L);
        t.record(-1, 30_000_000_000L);
        LoadTally.Snapshot first = t.takeInterval();
        assertThat(first.answers()).isEqualTo(3);
        assertThat(first.count(LoadTally.StatusClass.S2XX)).isEqualTo(1);
        assertThat(first.count(LoadTally.StatusClass.S429)).isEqualTo(1);
        assertThat(first.count(LoadTally.StatusClass.TRANSPORT_ERROR)).isEqualTo(1);
        assertThat(first.maxMs()).isEqualTo(30_000.0);

        t.record(503, 1_000_000L);
        t.record(500, 4_000_000L);
        LoadTally.Snapshot second = t.takeInterval();
        assertThat(second.answers()).isEqualTo(2);
        assertThat(second.count(LoadTally.StatusClass.S503)).isEqualTo(1);
        assertThat(second.count(LoadTally.StatusClass.OTHER)).isEqualTo(1);
        assertThat(second.p50Ms()).isEqualTo(1.0);
        assertThat(t.takeInterval().answers()).isZero();
        assertThat(t.total().answers()).isEqualTo(5);

        Map<String, Object> row = new LinkedHashMap<>();
        LoadTally.fill(row, second, 10);
        assertThat(row.keySet()).containsExactlyElementsOf(LoadTally.columns());
        assertThat(row).containsEntry("answers_per_s", "0.20").containsEntry("latency_p99_ms", "4.00")
                .containsEntry("status_503", 1L).containsEntry("status_2xx", 0L);
    }

    @Test
    void designedAnswersPass() {
        LoadVerdict v = LoadVerdict.of(snapshot(Map.of(LoadTally.StatusClass.S2XX, 90L, LoadTally.StatusClass.S429, 10L)),
                100, true, true);
        assertThat(v.passed()).as(v.failures().toString()).isTrue();
    }

    @Test
    void eachUndesignedOutcomeFailsOnItsOwn() {
        Map<LoadTally.StatusClass, Long> ok = Map.of(LoadTally.StatusClass.S2XX, 99L);
        assertThat(LoadVerdict.of(snapshot(with(ok, LoadTally.StatusClass.S503)), 100, true, true).failures())
                .singleElement().asString().contains("503: 1");
        assertThat(LoadVerdict.of(snapshot(with(ok, LoadTally.StatusClass.OTHER)), 100, true, true).failures())
                .singleElement().asString().contains("other: 1");
        assertThat(LoadVerdict.of(snapshot(with(ok, LoadTally.StatusClass.TRANSPORT_ERROR)), 100, true, true).failures())
                .singleElement().asString().contains("without an answer");
        assertThat(LoadVerdict.of(snapshot(ok), 100, true, true).failures())
                .singleElement().asString().contains("sent 100 requests but recorded 99");
        assertThat(LoadVerdict.of(snapshot(Map.of(LoadTally.StatusClass.S2XX, 100L)), 100, false, true).failures())
                .singleElement().asString().contains("lag");
        assertThat(LoadVerdict.of(snapshot(Map.of(LoadTally.StatusClass.S2XX, 100L)), 100, true, false).failures())
                .singleElement().asString().contains("exact check");
        assertThat(LoadVerdict.of(snapshot(Map.of(LoadTally.StatusClass.S429, 100L)), 100, true, true).failures())
                .singleElement().asString().contains("no request succeeded");
    }

    private static Map<LoadTally.StatusClass, Long> with(Map<LoadTally.StatusClass, Long> base, LoadTally.StatusClass one) {
        Map<LoadTally.StatusClass, Long> m = new EnumMap<>(base);
        m.merge(one, 1L, Long::sum);
        return m;
    }

    private static LoadTally.Snapshot snapshot(Map<LoadTally.StatusClass, Long> counts) {
        long n = counts.values().stream().mapToLong(Long::longValue).sum();
        return new LoadTally.Snapshot(new EnumMap<>(counts), n, 1, 2, 3, 4);
    }
}
