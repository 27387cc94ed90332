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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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

    /**
     * One drill: a scenario, and for REDIS_OUTAGE the edge's QUOTA_FAILURE_POLICY (issue 21: each policy once; the
     * stack's default, FAIL_CLOSED, with the scenario's full load, the other two with {@link #EXTRA_POLICY_LOAD} to keep
     * the suite's time down).
     */
    record Drill(FaultDrill.Scenario scenario, String policy) {
        @Override
        public String toString() {
            return policy.isEmpty() ? scenario.name() : scenario.name() + ":" + policy;
        }
    }

    /** 8 s before Redis stops, 15 s down, 7 s after it is back. */
    private static final java.time.Duration EXTRA_POLICY_LOAD = java.time.Duration.ofSeconds(30);

    /**
     * Every drill, or only those named in {@code -Dfaults.only=KAFKA_OUTAGE,...} (to repeat one while investigating):
     * a scenario's name selects all its drills, {@code REDIS_OUTAGE:FAIL_TO_DATABASE} one of them.
     */
    static Stream<Drill> scenarios() {
        List<Drill> all = new ArrayList<>();
        for (FaultDrill.Scenario s : FaultDrill.Scenario.values()) {
            if (s == FaultDrill.Scenario.KAFKA_BROKER_KILLS) {
                continue; // needs three brokers: KafkaClusterFaultsIT
            }
            if (s == FaultDrill.Scenario.REDIS_OUTAGE) {
                for (String policy : List.of("FAIL_CLOSED", "FAIL_OPEN", "FAIL_TO_DATABASE")) all.add(new Drill(s, policy));
            } else {
                all.add(new Drill(s, ""));
            }
        }
        String only = System.getProperty("faults.only", "").strip();
        if (only.isEmpty()) {
            return all.stream();
        }
        List<String> names = Arrays.stream(only.split(",")).map(String::strip).toList();
        for (String n : names) {
            FaultDrill.Scenario.valueOf(n.contains(":") ? n.substring(0, n.indexOf(':')) : n); // a typo fails loudly
        }
        return all.stream().filter(d -> names.contains(d.scenario().name()) || names.contains(d.toString()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void theBillStaysExactUnder(Drill drill, Engines engines, @TempDir Path workDir) throws Exception {
        FaultDrill.Scenario scenario = drill.scenario();
        String prefix = Names.unique("fault") + ".";
        Stack.ServiceEnv policy = drill.policy().isEmpty() ? Stack.ServiceEnv.AS_IS : (service, env) -> {
            if (service.equals(Stack.EDGE_JAR)) {
                env.put("QUOTA_FAILURE_POLICY", drill.policy());
            }
        };
        try (FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix, policy)) {
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                    stack.kafka(), stack.topics(), prefix);
            java.time.Duration load = drill.policy().isEmpty() || drill.policy().equals("FAIL_CLOSED")
                    ? scenario.load : EXTRA_POLICY_LOAD;
            FaultDrill.Result result = new FaultDrill(stack, engines, System.out)
                    .run(scenario, drill.policy(), load, RATE_PER_SECOND, demo, Path.of("target", "e2e-report.txt"));
            FIGURES.append(result); // before the assertions: a failing run's figures are written too
            if (!result.ok()) {
                keepLogs(stack.logsDir(), Path.of("target", "fault-logs", scenario.name()));
            }

            assertThat(result.drained()).as("pipeline drained after " + scenario + "\n"
                    + String.join("\n", result.verdict().lines())).isTrue();
            assertThat(result.verdict().ok()).as(String.join("\n", result.verdict().lines())).isTrue();
            assertThat(result.traffic().eventIds()).as("the edge kept answering calls").isNotEmpty();
            String during = "answered while Redis was down: " + result.duringFault();
            switch (drill.policy()) {
                case "FAIL_CLOSED" -> assertThat(result.duringFault(503)).as("fail closed: 503 while Redis is down; " + during)
                        .isPositive();
                case "FAIL_TO_DATABASE" -> {
                    // Issue 21: decided in Postgres, the calls keep succeeding; none refused for want of Redis.
                    System.out.println("FAIL_TO_DATABASE: " + result.duringFault(200) + " calls answered 200 while Redis was down");
                    assertThat(result.duringFault(503)).as("no 503 under FAIL_TO_DATABASE; " + during).isZero();
                    // ~225 calls are sent in the 15 s; 128-208 were answered 200 within them in runs on the shared box
                    // (the rest after the restore or upstream 500s). 50 leaves room for a slower box, and is far from
                    // FAIL_CLOSED's 4.
                    assertThat(result.duringFault(200)).as("calls succeed while Redis is down; " + during)
                            .isGreaterThanOrEqualTo(50);
                }
                default -> { }
            }
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
