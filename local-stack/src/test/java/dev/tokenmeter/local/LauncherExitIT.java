package dev.tokenmeter.local;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 13, {@code ./run-pipeline}'s console and its exit: the launcher, started as the script starts it (its own
 * class path, {@code logback-local-stack.xml}), prints a short start-up summary, the progress bar, the statements
 * and the verdict, nothing a library or an engine logs; and when it exits, at the end of a run or on SIGTERM
 * (Ctrl+C) while {@code --keep-running}, no temporary directory is left behind: not the engines' (embedded Postgres'
 * data directory, the Kafka broker's log directories, Redis'), nor the edge's spool, nor the aggregator's state.
 * Only the log folder stays.
 *
 * <p>The launcher runs with its own {@code java.io.tmpdir}, where the engines' directories go, and the broker and the
 * services get temporary directories inside the broker's and the run's work directories, so every temporary file of
 * the run lands where this test can list it. Embedded Postgres' binaries are a cache shared by every run
 * ({@code ot.epg.working-dir}), not a temporary directory of one run.
 */
class LauncherExitIT {

    private static final Duration RUN_TIMEOUT = Duration.ofMinutes(8);

    @Test
    void aRunPrintsOnlyItsSummaryAndLeavesNoTemporaryDirectory(@TempDir Path dir) throws Exception {
        Launcher launcher = Launcher.start(dir, "--duration", "5s", "--rate", "5");
        await("the launcher's run ends").atMost(RUN_TIMEOUT).until(() -> !launcher.process.isAlive());

        String console = launcher.console();
        assertThat(launcher.process.exitValue()).as("exit status; console:%n%s%nlog tail:%n%s", console, launcher.logTail())
                .isZero();
        assertThat(console).contains("RECONCILED: every total matches to the nano-dollar.");
        // Issue 17 in the demo: the allow-list and project set through the admin API, labels rolled up, spend per
        // customer from the usage API, and finance's rollup reconciliation at zero (else the run would exit 1).
        assertThat(console).contains("allow-list  plan starter: ", "project     alice's key -> support-bot",
                "Spend by customer label this month", "calls refused by the starter plan's allow-list (REJECTED, $0): ")
                .containsPattern("(?m)^  (acme-corp|globex|initech|umbrella) +\\d+ +\\d+\\.\\d{9}$")
                .containsPattern("rollup reconciliation \\(reconciliation_rollup\\): [1-9]\\d* user-month-dimensions, 0 with a difference");
        // Issue 19 in the demo: the pro plan's cache set through the admin API; repeated and concurrent identical calls
        // are one upstream call each, the rest hits (alice's statement has their CACHE_HIT line); async jobs all end.
        assertThat(console).contains("cache       plan pro: ", "3 identical calls one after another: miss, hit, hit",
                        "20 identical calls at once: {hit=19, miss=1}", "GET /v1/async/jobs/{id}): {succeeded=5}")
                .containsPattern("(?m)^CACHE_HIT +\\| gpt-4o-mini +\\| SERVICE_CREDIT +\\| 21 ");
        // Issue 17's tenant budget: set through the admin API; what the edge counts (Redis) equals the ledger's sum.
        assertThat(console).contains("budget      tenant acme: $1.00 a month shared by its users")
                .containsPattern("(?m)^tenant acme this month \\(GET /v1/usage limits\\): used (0\\.\\d{9}) of 1\\.000000000 USD;"
                        + " the ledger's service-credit sum: \\1 USD$");
        // Issue 16 in the demo: our bill against the fake upstream's own Usage and Costs APIs, every difference zero.
        assertThat(console).contains("Upstream reconciliation ")
                .containsPattern("(?m)^models with an upstream difference beyond tolerance \\(0\\): 0$")
                .containsPattern("(?m)^gpt-4o-mini-2024-07-18 +\\| [1-9]\\d* +\\| [1-9]\\d* +\\| 0 ");
        // Issue 16's media calls: one of each kind on the service's credit, answered and billed, on alice's statement,
        // and each compared with the upstream's own /usage/images, /audio_speeches, /audio_transcriptions, /moderations.
        assertThat(console).contains("media calls: image gpt-image-1 200, transcription whisper-1 200, transcription "
                        + "gpt-4o-mini-transcribe 200, speech tts-1 200, moderation 200 (alice, service credit; 5 events)");
        for (String model : List.of("gpt-image-1", "whisper-1", "gpt-4o-mini-transcribe", "tts-1", "omni-moderation-latest")) {
            assertThat(console).as("alice's statement line for " + model)
                    .containsPattern("(?m)^USAGE +\\| " + java.util.regex.Pattern.quote(model) + " +\\| SERVICE_CREDIT +\\| 1 ");
        }
        for (String model : List.of("gpt-image-1", "whisper-1", "gpt-4o-mini-transcribe", "tts-1", "omni-moderation-2024-09-26")) {
            assertThat(console).as("the upstream reconciliation's row for " + model)
                    .containsPattern("(?m)^" + java.util.regex.Pattern.quote(model) + " +\\| 1 +\\| 1 +\\| 0 ");
        }
        List<String> startUp = console.lines().takeWhile(l -> !l.startsWith("seeded ")).toList();
        assertThat(startUp).as("the start-up summary: a heading and one line per engine and service")
                .hasSizeLessThanOrEqualTo(10)
                .anyMatch(l -> l.startsWith("kafka ")).anyMatch(l -> l.startsWith("postgres "))
                .anyMatch(l -> l.startsWith("edge ")).anyMatch(l -> l.startsWith("sink "));
        for (String printed : List.of(console, launcher.stderr())) {
            assertThat(printed).as("nothing a library or an engine logs reaches the console")
                    .doesNotContainPattern("(?m)^\\d{2}:\\d{2}:\\d{2}")
                    .doesNotContain(" INFO ", " DEBUG ", "initdb", "Flyway", "ensure_usage_ledger_partitions", "logback", "SLF4J");
        }
        assertThat(Files.readString(launcher.logs().resolve("local-stack.log")))
                .as("what the engines log goes to the log folder").contains("embedded Postgres");

        assertNothingLeftBehind(launcher);
    }

    @Test
    void sigtermWhileKeptRunningLeavesNoTemporaryDirectory(@TempDir Path dir) throws Exception {
        Launcher launcher = Launcher.start(dir, "--duration", "3s", "--rate", "5", "--keep-running");
        await("the launcher says everything is still running").atMost(RUN_TIMEOUT)
                .until(() -> launcher.console().contains("Press Ctrl+C to stop.") || !launcher.process.isAlive());
        assertThat(launcher.process.isAlive()).as("still running; console:%n%s", launcher.console()).isTrue();

        launcher.process.destroy(); // SIGTERM, what Ctrl+C's SIGINT does to the JVM's shutdown hooks
        await("the launcher exits after SIGTERM").atMost(Duration.ofMinutes(3)).until(() -> !launcher.process.isAlive());

        assertNothingLeftBehind(launcher);
    }

    static void assertNothingLeftBehind(Launcher launcher) throws IOException {
        assertThat(listAll(launcher.tmp)).as("left behind in the launcher's temporary directory").isEmpty();
        try (Stream<Path> entries = Files.list(launcher.work)) {
            assertThat(entries.map(p -> p.getFileName().toString()).toList())
                    .as("left behind in the launcher's work directory (the spool and the aggregator's state go)")
                    .containsExactly("logs");
        }
    }

    private static List<String> listAll(Path dir) throws IOException {
        List<String> all = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.filter(p -> !p.equals(dir)).forEach(p -> all.add(dir.relativize(p).toString()));
        }
        return all;
    }

    /** {@code ./run-pipeline}'s launcher in its own JVM, with its own temporary and work directories. */
    record Launcher(Process process, Path tmp, Path work, Path stdout, Path stderrFile) {

        static Launcher start(Path dir, String... args) throws IOException {
            Path tmp = Files.createDirectories(dir.resolve("tmp"));
            Path work = dir.resolve("run");
            Path stdout = dir.resolve("console.txt");
            Path stderr = dir.resolve("stderr.txt");
            // As ./run-pipeline runs it (Maven runs this test in the module's directory).
            String classPath = Path.of("target", "classes").toAbsolutePath() + ":"
                    + Files.readString(Path.of("target", "runtime-classpath.txt")).strip();
            List<String> command = new ArrayList<>(List.of(
                    Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-Dlogback.configurationFile=logback-local-stack.xml",
                    "-Djava.io.tmpdir=" + tmp,
                    "-Dot.epg.working-dir=" + Path.of(System.getProperty("java.io.tmpdir"), "embedded-pg"),
                    "-D" + LocalStack.WORK_DIR_PROPERTY + "=" + work,
                    "-Dlocal-stack.logs=" + work.resolve("logs"),
                    "-cp", classPath, LocalStack.class.getName()));
            command.addAll(List.of(args));
            ProcessBuilder builder = new ProcessBuilder(command)
                    .redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
            builder.environment().remove("JAVA_TOOL_OPTIONS");
            return new Launcher(builder.start(), tmp, work, stdout, stderr);
        }

        String console() throws IOException {
            return Files.readString(stdout, StandardCharsets.UTF_8);
        }

        String stderr() throws IOException {
            return Files.readString(stderrFile, StandardCharsets.UTF_8);
        }

        Path logs() {
            return work.resolve("logs");
        }

        String logTail() {
            Path log = logs().resolve("local-stack.log");
            try {
                List<String> lines = Files.readAllLines(log);
                return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
            } catch (IOException e) {
                return "(no " + log + ")";
            }
        }
    }
}
