package dev.tokenmeter.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.IntPredicate;

/**
 * A service in its own JVM, for tests and the local stack, either
 * <ul>
 *   <li>as shipped ({@link #shippedJar}): {@code java <flags> -jar <module>/target/<module>-*-all.jar}, exactly the
 *       Dockerfile's entry point, configured by an environment map only; or</li>
 *   <li>from its plain {@code main} with the current class path and an environment, for tests that must kill a
 *       module's own build hard ({@link #kill()} is SIGKILL: no shutdown hook, no clean close).</li>
 * </ul>
 * Output goes to a log file, appended across restarts.
 */
public final class ChildJvm implements AutoCloseable {

    /**
     * Variables a shipped jar inherits from this process: only what the operating system and the JVM need to run
     * at all. Everything the service reads comes from the map given, as in a container.
     */
    static final List<String> INHERITED_BY_JARS = List.of("PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR");

    /** How long a child still running when this JVM exits may take for its shutdown hooks before SIGKILL. */
    static final Duration REAPER_GRACE = Duration.ofSeconds(10);

    private final String name;
    /** What follows {@code java} and the JVM flags: {@code -cp <path> <main>} or {@code -jar <jar>}. */
    private final List<String> launch;
    private final Map<String, String> env;
    private final boolean envOnly;
    private final Path log;
    private final List<String> jvmArgs;
    private Process process;
    /** Length of the log when this run started: what the run printed comes after it. */
    private long logOffsetAtStart;

    public ChildJvm(String mainClass, Map<String, String> env, Path log, String... jvmArgs) {
        this(mainClass.substring(mainClass.lastIndexOf('.') + 1),
                List.of("-cp", System.getProperty("java.class.path"), mainClass), env, false, log, jvmArgs);
    }

    private ChildJvm(String name, List<String> launch, Map<String, String> env, boolean envOnly, Path log,
                     String... jvmArgs) {
        this.name = name;
        this.launch = List.copyOf(launch);
        this.env = Map.copyOf(env);
        this.envOnly = envOnly;
        this.log = log;
        this.jvmArgs = List.of(jvmArgs);
    }

    /**
     * The module's shipped jar run as the Dockerfile runs it: {@code java <jvmFlags> -jar <jar>}, no class path, no
     * system properties, and an environment of {@code env} plus only {@link #INHERITED_BY_JARS} (a variable set in
     * the shell that runs the tests cannot configure the service behind the test's back). {@code jvmFlags} are for
     * sizing the JVM (heap, GC) only; the jar is located by {@link ShippedJar#locate}.
     */
    public static ChildJvm shippedJar(String module, Map<String, String> env, Path log, String... jvmFlags) {
        Path jar = ShippedJar.locate(module);
        return new ChildJvm(module, List.of("-jar", jar.toString()), env, true, log, jvmFlags);
    }

    /**
     * A service's jar at {@code jar} run as {@link #shippedJar} runs a module's: for a benchmark that compares two
     * builds of one service in the same run (EdgeBenchmark's A/B edge).
     */
    public static ChildJvm jar(Path jar, Map<String, String> env, Path log, String... jvmFlags) {
        return new ChildJvm(jar.getFileName().toString(), List.of("-jar", jar.toAbsolutePath().toString()), env, true, log, jvmFlags);
    }

    public synchronized ChildJvm start() {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmArgs);
        command.addAll(launch);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        if (envOnly) {
            builder.environment().keySet().retainAll(INHERITED_BY_JARS);
        }
        builder.environment().putAll(env);
        try {
            Files.createDirectories(log.toAbsolutePath().getParent());
            Files.writeString(log, "---- starting " + launch.get(launch.size() - 1) + " ----\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            logOffsetAtStart = Files.size(log);
            builder.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            process = builder.start();
            Process started = process;
            // If this JVM exits (normally, on an error or on Ctrl+C) the child goes with it; SIGKILL of this JVM
            // cannot run hooks, which is why services also stop when their own shutdown is requested.
            Runtime.getRuntime().addShutdownHook(new Thread(() -> reap(started), "child-jvm-reaper"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name, e);
        }
        return this;
    }

    /**
     * At this JVM's exit: SIGTERM first, so that the child's own shutdown hooks run and its temporary files go
     * (Kafka's lz4 and RocksDB's native libraries, unpacked into java.io.tmpdir, are deleted on exit, not on
     * SIGKILL; {@code LauncherExitIT}), SIGKILL after {@link #REAPER_GRACE}.
     */
    private static void reap(Process child) {
        if (!child.isAlive()) {
            return;
        }
        child.destroy();
        try {
            if (!child.waitFor(REAPER_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                child.destroyForcibly();
            }
        } catch (InterruptedException e) {
            child.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    /** SIGKILL, then waits for the process to be gone. */
    public synchronized void kill() {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            waitFor(Duration.ofSeconds(30));
        }
    }

    /** SIGTERM (shutdown hooks run), then SIGKILL after the timeout. */
    public synchronized void stop(Duration timeout) {
        terminate(timeout);
    }

    /**
     * How a {@link #terminate} ended: the exit code (143 = 128 + SIGTERM when the JVM ran its shutdown hooks and
     * halted on the signal, 0 when {@code main} returned first), how long it took, and whether the grace period ran
     * out and SIGKILL was needed.
     */
    public record Stopped(int exitCode, Duration took, boolean killed) {
    }

    /** SIGTERM, up to {@code grace} for the shutdown hooks, then SIGKILL; says how it went. */
    public synchronized Stopped terminate(Duration grace) {
        if (process == null || !process.isAlive()) {
            return new Stopped(process == null ? -1 : process.exitValue(), Duration.ZERO, false);
        }
        long t0 = System.nanoTime();
        process.destroy();
        boolean exited = waitFor(grace);
        if (!exited) {
            kill();
        }
        return new Stopped(process.isAlive() ? -1 : process.exitValue(), Duration.ofNanos(System.nanoTime() - t0), !exited);
    }

    public synchronized boolean isAlive() {
        return process != null && process.isAlive();
    }

    /** The main class's simple name or the shipped jar's module, for messages. */
    public String name() {
        return name;
    }

    public synchronized long pid() {
        return process == null ? -1 : process.pid();
    }

    public Path log() {
        return log;
    }

    /** Whether the log contains the text (e.g. a READY line). */
    public boolean logContains(String text) {
        try {
            return Files.exists(log) && Files.readString(log).contains(text);
        } catch (IOException e) {
            return false;
        }
    }

    /** What follows {@code java} and the JVM flags: {@code -jar <jar>} or {@code -cp <path> <main>}. */
    public List<String> launch() {
        return launch;
    }

    /** Whether this run (not an earlier one appended to the same log) printed the text. */
    public synchronized boolean printedSinceStart(String text) {
        try {
            if (!Files.exists(log)) {
                return false;
            }
            byte[] all = Files.readAllBytes(log);
            int from = (int) Math.min(logOffsetAtStart, all.length);
            return new String(all, from, all.length - from, StandardCharsets.UTF_8).contains(text);
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Polls this run's output until it prints {@code line} (e.g. a service's READY line). Fails at once, with the
     * tail of the log, when it or any of {@code alsoWatched} exits meanwhile. A start-up poll of programs, as
     * {@link #awaitHttp}.
     */
    public void awaitPrinted(String line, Duration timeout, Collection<ChildJvm> alsoWatched) {
        List<ChildJvm> watched = new ArrayList<>(alsoWatched);
        watched.add(this);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (printedSinceStart(line)) {
                return;
            }
            failIfAnyExited(watched);
            pauseBetweenPolls();
        }
        throw new IllegalStateException(name + " did not print '" + line + "' within " + timeout + ":\n" + logTail(40));
    }

    public String logTail(int lines) {
        try {
            List<String> all = Files.readAllLines(log);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log)";
        }
    }

    /**
     * Polls {@code url} (served by {@code server}) until its HTTP status satisfies {@code up}. Fails at once,
     * with the tail of its log, when {@code server} or any of {@code alsoWatched} exits meanwhile, and with
     * the tail of {@code server}'s log after {@code timeout}. A start-up poll of programs, not a test's wait.
     */
    public static void awaitHttp(URI url, IntPredicate up, Duration timeout, ChildJvm server,
                                 Collection<ChildJvm> alsoWatched) {
        HttpClient http = HttpClient.newHttpClient();
        List<ChildJvm> watched = new ArrayList<>(alsoWatched);
        watched.add(server);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            failIfAnyExited(watched);
            try {
                if (up.test(http.send(HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(2)).build(),
                        HttpResponse.BodyHandlers.discarding()).statusCode())) {
                    return;
                }
            } catch (IOException notListeningYet) {
                // polled again
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + url, e);
            }
            pauseBetweenPolls();
        }
        throw new IllegalStateException(server.name() + " not ready at " + url + " after " + timeout + ":\n"
                + server.logTail(40));
    }

    private static void failIfAnyExited(List<ChildJvm> watched) {
        for (ChildJvm p : watched) {
            if (!p.isAlive()) {
                throw new IllegalStateException(p.name() + " exited during start-up:\n" + p.logTail(40));
            }
        }
    }

    private static void pauseBetweenPolls() {
        try {
            Thread.sleep(200);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for a child JVM", e);
        }
    }

    private boolean waitFor(Duration timeout) {
        try {
            return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    @Override
    public void close() {
        stop(Duration.ofSeconds(20));
    }
}
