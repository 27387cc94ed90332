package dev.tokenmeter.local;

import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.Arrays;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 7's end-to-end proof under faults (Maven profile {@code faults}; about 6 minutes): steady load
 * through the edge while a component is killed or stopped, then the same checks every time — every
 * event id the edge returned is in the ledger exactly once, no duplicate ids, and ledger = monthly =
 * sum of hourly totals per user, model and key source. Each run writes its table of figures to
 * {@code target/fault-figures.md} (BENCHMARKS.md's fault table is refreshed from it; issue 13) and appends the
 * details to {@code target/e2e-report.txt}.
 */
@ExtendWith(EnginesExtension.class)
class PipelineFaultsIT {

    private static final int RATE_PER_SECOND = 15;
    private static final FaultFigures FIGURES = new FaultFigures(Path.of("target", "fault-figures.md"));

    @BeforeAll
    static void startsTheFiguresOfThisRun() {
        FIGURES.begin(Instant.now(), RATE_PER_SECOND + " requests/s of demo traffic through the edge, the services run"
                + " from their shipped jars");
    }

    /** Every scenario, or only those named in {@code -Dfaults.only=KAFKA_OUTAGE,...} (to repeat one while investigating). */
    static Stream<FaultDrill.Scenario> scenarios() {
        String only = System.getProperty("faults.only", "").strip();
        if (only.isEmpty()) {
            return Arrays.stream(FaultDrill.Scenario.values());
        }
        return Arrays.stream(only.split(",")).map(String::strip).map(FaultDrill.Scenario::valueOf);
    }

    @ParameterizedTest
    @MethodSource("scenarios")
    void theBillStaysExactUnder(FaultDrill.Scenario scenario, Engines engines, @TempDir Path workDir) throws Exception {
        String prefix = Names.unique("fault") + ".";
        try (FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix)) {
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                    stack.kafka(), stack.topics(), prefix);
            FaultDrill.Result result = new FaultDrill(stack, engines, System.out)
                    .run(scenario, RATE_PER_SECOND, demo, Path.of("target", "e2e-report.txt"));
            FIGURES.append(result); // before the assertions: a failing run's figures are written too
            if (!result.ok()) {
                keepLogs(stack.logsDir(), Path.of("target", "fault-logs", scenario.name()));
            }

            assertThat(result.drained()).as("pipeline drained after " + scenario + "\n"
                    + String.join("\n", result.verdict().lines())).isTrue();
            assertThat(result.verdict().ok()).as(String.join("\n", result.verdict().lines())).isTrue();
            assertThat(result.traffic().eventIds()).as("the edge kept answering calls").isNotEmpty();
        }
    }

    /** A failing scenario's service logs outlive the temporary directory, so a CI failure can be read afterwards. */
    private static void keepLogs(Path logs, Path into) throws IOException {
        Files.createDirectories(into);
        try (var files = Files.list(logs)) {
            for (Path log : files.filter(f -> f.getFileName().toString().endsWith(".log")).toList()) {
                Files.copy(log, into.resolve(log.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        System.out.println("service logs of the failing scenario kept in " + into.toAbsolutePath());
    }
}
