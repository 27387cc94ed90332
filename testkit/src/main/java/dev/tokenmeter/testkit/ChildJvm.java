package dev.tokenmeter.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
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
 * A service's plain {@code main} in its own JVM, with the current class path and an environment, for
 * tests that must kill a process hard ({@link #kill()} is SIGKILL: no shutdown hook, no clean close).
 * Output goes to a log file, appended across restarts.
 */
public final class ChildJvm implements AutoCloseable {

    private final String mainClass;
    private final Map<String, String> env;
    private final Path log;
    private final List<String> jvmArgs;
    private Process process;

    public ChildJvm(String mainClass, Map<String, String> env, Path log, String... jvmArgs) {
        this.mainClass = mainClass;
        this.env = Map.copyOf(env);
        this.log = log;
        this.jvmArgs = List.of(jvmArgs);
    }

    public synchronized ChildJvm start() {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmArgs);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().putAll(env);
        try {
            Files.createDirectories(log.toAbsolutePath().getParent());
            Files.writeString(log, "---- starting " + mainClass + " ----\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            builder.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            process = builder.start();
            Process started = process;
            // If this JVM exits (normally or on an error) the child goes with it; SIGKILL of this JVM
            // cannot run hooks, which is why services also stop when their own shutdown is requested.
            Runtime.getRuntime().addShutdownHook(new Thread(started::destroyForcibly, "child-jvm-reaper"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + mainClass, e);
        }
        return this;
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
        if (process != null && process.isAlive()) {
            process.destroy();
            if (!waitFor(timeout)) {
                kill();
            }
        }
    }

    public synchronized boolean isAlive() {
        return process != null && process.isAlive();
    }

    /** The main class's simple name, for messages. */
    public String name() {
        return mainClass.substring(mainClass.lastIndexOf('.') + 1);
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
        try {
            while (System.nanoTime() < deadline) {
                for (ChildJvm p : watched) {
                    if (!p.isAlive()) {
                        throw new IllegalStateException(p.name() + " exited during start-up:\n" + p.logTail(40));
                    }
                }
                try {
                    if (up.test(http.send(HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(2)).build(),
                            HttpResponse.BodyHandlers.discarding()).statusCode())) {
                        return;
                    }
                } catch (IOException notListeningYet) {
                    // polled again
                }
                Thread.sleep(200);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for " + url, e);
        }
        throw new IllegalStateException(server.name() + " not ready at " + url + " after " + timeout + ":\n"
                + server.logTail(40));
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
