package dev.tokenmeter.local.monitoring;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Where the monitoring files are (docker/prometheus, docker/alertmanager, docker/grafana) and how the tests run
 * Debian's tools on them. A missing tool fails the test, never skips it: CI installs them (.ci/run) as it installs
 * redis-server, and on a developer's box the failure says which package to install (docs/adr/0069-alert-rules.md).
 */
public final class MonitoringFiles {

    private MonitoringFiles() {
    }

    /** The repository's root: the directory above this module that holds docker-compose.yml. */
    public static Path root() {
        Path root = Path.of("").toAbsolutePath();
        while (!Files.exists(root.resolve("docker-compose.yml"))) {
            root = root.getParent();
            assertThat(root).as("a docker-compose.yml above the module").isNotNull();
        }
        return root;
    }

    public static Path prometheusDir() {
        return root().resolve("docker/prometheus");
    }

    /** An executable of a Debian package, from PATH or /usr/bin; fails naming the package when it is not there. */
    public static Path tool(String name, String debianPackage) {
        List<Path> candidates = new ArrayList<>();
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty()) {
                candidates.add(Path.of(dir, name));
            }
        }
        candidates.add(Path.of("/usr/bin", name));
        for (Path p : candidates) {
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        throw new AssertionError(name + " is not installed: `apt-get install -y " + debianPackage + "` (Debian's package;"
                + " .ci/run installs it). The alert rules' tests need it and do not skip without it.");
    }

    /** What a finished tool printed, and how it ended. */
    record Run(int exitCode, String output) {
    }

    /** Runs a tool in {@code dir}, stdout and stderr together, bounded to 60 s. */
    static Run run(Path dir, String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish in 60 s");
        }
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }
}
