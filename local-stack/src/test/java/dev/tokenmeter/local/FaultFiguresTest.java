package dev.tokenmeter.local;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** Issue 13: the fault suite writes its figures on every run, as the table BENCHMARKS.md shows. */
class FaultFiguresTest {

    @Test
    void aRowHasBenchmarksColumnsWithThousandsAndTheMostFrequentStatusFirst() {
        Map<Integer, Long> statuses = new LinkedHashMap<>();
        statuses.put(500, 26L);
        statuses.put(200, 980L);
        statuses.put(429, 494L);
        FaultDrill.Result kafka = result(FaultDrill.Scenario.KAFKA_OUTAGE, 1_500, statuses, 1_500, true, true);

        assertThat(FaultFigures.row(kafka)).isEqualTo(
                "| Kafka broker stopped | 1,500 | 200: 980, 429: 494, 500: 26 | 64 s | 1.6 s | 990 events | 1,500 = 1,500 rows | reconciled |");
    }

    @Test
    void aFailedRunSaysSoAndShowsTheLedgerAgainstTheCallsSent() {
        FaultDrill.Result lost = result(FaultDrill.Scenario.POSTGRES_OUTAGE, 675, Map.of(200, 675L), 673, true, false);
        FaultDrill.Result stuck = result(FaultDrill.Scenario.REDIS_OUTAGE, 675, Map.of(200, 675L), 600, false, false);

        assertThat(FaultFigures.row(lost)).contains("| 673 ≠ 675 rows | NOT reconciled |");
        assertThat(FaultFigures.row(stuck)).contains("| 600 ≠ 675 rows | NOT drained |");
    }

    @Test
    void eachRunStartsTheFileAfreshAndEveryScenarioAppendsItsRow(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("target").resolve("fault-figures.md");
        Files.createDirectories(file.getParent());
        Files.writeString(file, "an earlier run's table\n");
        FaultFigures figures = new FaultFigures(file);

        figures.begin(Instant.parse("2026-12-03T03:00:00Z"), "15 requests/s");
        figures.append(result(FaultDrill.Scenario.KILL_AGGREGATOR_AND_SINK, 900, Map.of(200, 900L), 900, true, true));
        figures.append(result(FaultDrill.Scenario.REDIS_OUTAGE, 675, Map.of(503, 250L, 200, 425L), 675, true, true));

        List<String> lines = Files.readAllLines(file);
        assertThat(lines).doesNotContain("an earlier run's table");
        assertThat(lines.get(0)).isEqualTo("# Fault suite figures");
        assertThat(lines).contains("Run at 2026-12-03T03:00:00Z, 15 requests/s.");
        assertThat(lines.stream().filter(l -> l.startsWith("| ")).toList())
                .hasSize(3)
                .satisfies(rows -> {
                    assertThat(rows.get(0)).startsWith("| scenario | calls |");
                    assertThat(rows.get(1)).startsWith("| aggregator + sink SIGKILLed 3× each | 900 |");
                    assertThat(rows.get(2)).startsWith("| Redis stopped | 675 | 200: 425, 503: 250 |");
                });
    }

    /** Issue 21: the Redis outage runs once per QUOTA_FAILURE_POLICY; the row names the policy. */
    @Test
    void aVariantIsNamedInItsRow() {
        FaultDrill.Result r = result(FaultDrill.Scenario.REDIS_OUTAGE, 10, Map.of(200, 10L), 10, true, true);
        FaultDrill.Result database = new FaultDrill.Result(r.scenario(), "FAIL_TO_DATABASE", r.traffic(), r.verdict(), true,
                r.faultDuration(), r.recovery(), r.maxBacklogEvents(), Map.of(200, 4L));

        assertThat(FaultFigures.row(database)).startsWith("| Redis stopped, FAIL_TO_DATABASE | 10 |");
        assertThat(database.duringFault(200)).isEqualTo(4);
        assertThat(database.duringFault(503)).isZero();
    }

    @Test
    void aScenarioRunAloneStillGetsAHeader(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("fault-figures.md");

        new FaultFigures(file).append(result(FaultDrill.Scenario.REDIS_OUTAGE, 10, Map.of(200, 10L), 10, true, true));

        assertThat(Files.readString(file)).startsWith(FaultFigures.HEADER).contains("| Redis stopped | 10 |");
    }

    private static FaultDrill.Result result(FaultDrill.Scenario scenario, long sent, Map<Integer, Long> statuses,
                                            long ledgerRows, boolean drained, boolean ok) {
        DemoTraffic.Report traffic = new DemoTraffic.Report(sent, statuses, Map.of(), Set.of(), 0);
        Reconciliation.Verdict verdict = new Reconciliation.Verdict(ok, List.of(), ledgerRows);
        return new FaultDrill.Result(scenario, "", traffic, verdict, drained, Duration.ofSeconds(64), Duration.ofMillis(1_600),
                990, Map.of());
    }
}
