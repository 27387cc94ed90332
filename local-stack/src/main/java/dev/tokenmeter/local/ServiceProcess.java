package dev.tokenmeter.local;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One pipeline service (edge, aggregator, sink) in its own JVM, started from a plain {@code main} with
 * configuration by environment variables only — exactly how a container runs it. Output goes to a
 * log file. {@link #kill()} is SIGKILL (no shutdown hook runs), {@link #stop()} is SIGTERM (graceful).
 */
public final class ServiceProcess implements AutoCloseable {

    private final String name;
    private final String mainClass;
    private final Map<String, String> env;
    private final Path logFile;
    private final List<String> jvmArgs;
    private Process process;
    private int starts;

    public ServiceProcess(String name, String mainClass, Map<String, String> env, Path logDir, List<String> jvmArgs) {
        this.name = name;
        this.mainClass = mainClass;
        this.env = Map.copyOf(env);
        this.logFile = logDir.resolve(name + ".log");
        this.jvmArgs = List.copyOf(jvmArgs);
    }

    public synchronized ServiceProcess start() {
        if (process != null && process.isAlive()) {
            return this;
        }
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmArgs);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass);
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().putAll(env);
        builder.redirectErrorStream(true);
        try {
            Files.createDirectories(logFile.getParent());
            builder.redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
            Files.writeString(logFile, "---- start #" + (++starts) + " of " + name + " ----\n",
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
            process = builder.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name, e);
        }
        return this;
    }

    /** SIGKILL: the JVM dies mid-flight with no shutdown hook, like a crashed container. */
    public synchronized void kill() {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            waitForExit(Duration.ofSeconds(30));
        }
    }

    /** SIGTERM, then SIGKILL if it has not exited within the timeout. */
    public synchronized void stop(Duration timeout) {
        if (process != null && process.isAlive()) {
            process.destroy();
            if (!waitForExit(timeout)) {
                kill();
            }
        }
    }

    public synchronized boolean isAlive() {
        return process != null && process.isAlive();
    }

    public String name() {
        return name;
    }

    public Path logFile() {
        return logFile;
    }

    public long pid() {
        return process == null ? -1 : process.pid();
    }

    /** The last lines of the log, for failure messages. */
    public String logTail(int lines) {
        try {
            List<String> all = Files.readAllLines(logFile);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private boolean waitForExit(Duration timeout) {
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
