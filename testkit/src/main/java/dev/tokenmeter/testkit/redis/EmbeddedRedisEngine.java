package dev.tokenmeter.testkit.redis;

import dev.tokenmeter.testkit.EngineVersions;
import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.support.FreePorts;
import dev.tokenmeter.testkit.support.ManagedServer;
import dev.tokenmeter.testkit.support.WorkDirs;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The machine's own redis-server ({@link EngineVersions#REDIS_MAJOR}, Debian's {@code redis-server} package; .ci/run
 * installs it) on a free loopback port, without persistence: a stop loses the data, as a Redis without AOF/RDB would.
 * As in a deployment, only the ACL user {@value #USER} with a random password may log in; the {@code default} user is
 * off, so a client without credentials is refused. The password is in a 0600 config file, never on the command line.
 */
public final class EmbeddedRedisEngine extends ManagedServer implements RedisEngine {

    public static final String USER = "tokenmeter";
    /** Where the binary is looked for when it is not on PATH. */
    private static final List<Path> KNOWN_LOCATIONS = List.of(Path.of("/usr/bin/redis-server"), Path.of("/usr/local/bin/redis-server"));
    private static final String HOST = "127.0.0.1";
    private static final Duration START_TIMEOUT = Duration.ofSeconds(20);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

    private final Path binary;
    private final Path workDir;
    private final Path config;
    private final Path log;
    private final int port;
    private final String password;
    private final int busPort;
    private Process process;

    private EmbeddedRedisEngine(Path binary, int port, int busPort, String password, List<String> extraConfig) {
        super("Redis");
        this.binary = binary;
        this.port = port;
        this.password = password;
        this.busPort = busPort;
        this.workDir = WorkDirs.create("tokenmeter-redis-");
        this.config = workDir.resolve("redis.conf");
        this.log = workDir.resolve("redis.log");
        writeConfig(extraConfig);
    }

    public static EmbeddedRedisEngine launch() {
        return launch(List.of());
    }

    /** A standalone server with these extra redis.conf lines, e.g. {@code maxmemory 64mb} for a cache. */
    public static EmbeddedRedisEngine launch(List<String> extraConfig) {
        return launch(new EmbeddedRedisEngine(findBinary(), FreePorts.pick(), 0, newPassword(), List.copyOf(extraConfig)));
    }

    /**
     * One node of an {@link EmbeddedRedisCluster}: {@code cluster-enabled yes}, its bus on {@code busPort}, its
     * nodes.conf in its work directory (kept across stop/kill and start, so a restarted node keeps its identity),
     * and the shared ACL user as the replication login (masteruser/masterauth).
     */
    static EmbeddedRedisEngine launchClusterNode(Path binary, int port, int busPort, String password, long nodeTimeoutMillis) {
        return launch(new EmbeddedRedisEngine(binary, port, busPort, password, List.of(
                "cluster-enabled yes",
                "cluster-port " + busPort,
                "cluster-config-file nodes.conf",
                "cluster-node-timeout " + nodeTimeoutMillis,
                // a replica may always take over, however long its master has been gone (test clusters are short-lived)
                "cluster-replica-validity-factor 0",
                "masteruser " + USER,
                "masterauth " + password)));
    }

    /** The cluster bus port of a cluster node (0 for a standalone server). */
    int busPort() {
        return busPort;
    }

    static String newPassword() {
        return HexFormat.of().formatHex(randomBytes(24));
    }

    /** SIGKILL, as a crashed machine: no goodbye to clients or to the cluster. start() brings the node back on its port. */
    public synchronized void kill() {
        Process running = process;
        if (running == null || !running.isAlive()) {
            return;
        }
        running.destroyForcibly();
        try {
            running.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        process = null;
    }

    /** redis-server on PATH, else in /usr/bin or /usr/local/bin; a clear error when there is none. */
    static Path findBinary() {
        String path = System.getenv("PATH");
        if (path != null) {
            for (String dir : path.split(java.io.File.pathSeparator)) {
                if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "redis-server"))) {
                    return Path.of(dir, "redis-server");
                }
            }
        }
        return KNOWN_LOCATIONS.stream().filter(Files::isExecutable).findFirst().orElseThrow(() -> new IllegalStateException(
                "the embedded Redis needs the machine's redis-server " + EngineVersions.REDIS_MAJOR
                        + " (not on PATH, nor in " + KNOWN_LOCATIONS + "): install it with `apt-get install -y redis-server`"
                        + " (.ci/run does), or run the tests with another backend (testkit/README.md)"));
    }

    @Override
    public String host() {
        return HOST;
    }

    @Override
    public int port() {
        return port;
    }

    @Override
    public String user() {
        return USER;
    }

    @Override
    public String password() {
        return password;
    }

    @Override
    public String uri() {
        return "redis://" + USER + ":" + password + "@" + HOST + ":" + port;
    }

    @Override
    protected void startServer() {
        try {
            process = new ProcessBuilder(binary.toString(), config.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException("could not run " + binary, e);
        }
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (!FreePorts.accepts(HOST, port, 200)) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                String why = process.isAlive() ? "not accepting connections after " + START_TIMEOUT.toSeconds() + " s"
                        : "exited with " + process.exitValue();
                process.destroyForcibly();
                process = null;
                throw new IllegalStateException("the embedded Redis (" + binary + ") did not start on " + where() + ": "
                        + why + "; its log ends:" + System.lineSeparator() + WorkDirs.tail(log, 20));
            }
            try {
                Thread.sleep(20); // polling a port that is about to open; nothing to await on
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while starting the embedded Redis", e);
            }
        }
    }

    @Override
    protected void stopServer() {
        Process running = process;
        process = null;
        running.destroy(); // SIGTERM: redis-server exits at once (no RDB to save)
        try {
            if (!running.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                running.destroyForcibly().waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            running.destroyForcibly();
        }
    }

    @Override
    protected boolean running() {
        return process != null && process.isAlive();
    }

    @Override
    protected String where() {
        return HOST + ":" + port;
    }

    @Override
    protected void release() {
        WorkDirs.deleteQuietly(workDir);
    }

    private void writeConfig(List<String> extraConfig) {
        List<String> lines = new java.util.ArrayList<>(List.of(
                "port " + port,
                "bind " + HOST,
                "protected-mode yes",
                "save \"\"",
                "appendonly no",
                "dir " + workDir,
                "maxmemory-policy noeviction",
                // Only our ACL user may log in: the default user (no password) is switched off.
                "user default off",
                "user " + USER + " on >" + password + " ~* &* +@all"));
        lines.addAll(extraConfig);
        lines.add("");
        String text = String.join("\n", lines);
        try {
            Files.writeString(config, text);
            Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException e) {
            throw new UncheckedIOException("could not write the embedded Redis's configuration " + config, e);
        }
    }

    private static byte[] randomBytes(int n) {
        byte[] bytes = new byte[n];
        new SecureRandom().nextBytes(bytes);
        return bytes;
    }
}
