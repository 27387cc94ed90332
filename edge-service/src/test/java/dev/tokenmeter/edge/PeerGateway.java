package dev.tokenmeter.edge;

import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import dev.tokenmeter.testkit.support.FreePorts;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The peer gateway of issue 15 (nginx + ngx_lua, Kong's architecture; {@code ../shared/peer-gateway/README.md}) for
 * {@link EdgeBenchmark}: started with its own {@code start.sh} in the foreground on a port, an upstream and a Redis,
 * stopped with SIGTERM to the master's pid in {@code <dir>/nginx.pid}, always (also from a shutdown hook if the
 * benchmark dies first). Its key is {@link #KEY}.
 */
final class PeerGateway implements AutoCloseable {

    static final String KEY = "peer-key-1";
    /** The Redis key the peer reserves its user's credit on ({@code reserve.lua}, limit 10^15 nano-USD). */
    static final String CREDIT_KEY = "{peer-user-1}:credit";

    private final Path dir;
    private final int port;
    private final Process process;
    private final Thread hook;

    private PeerGateway(Path dir, int port, Process process) {
        this.dir = dir;
        this.port = port;
        this.process = process;
        this.hook = new Thread(this::stop, "peer-gateway-stop");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /**
     * The peer gateway's directory: {@code -Dbench.peerGateway}, else {@code <repository>/../shared/peer-gateway}
     * (in a git worktree elsewhere, also beside the main checkout the worktree belongs to). Fails when there is no
     * {@code start.sh} in it.
     */
    static Path home() throws IOException {
        String set = System.getProperty("bench.peerGateway", "").strip();
        List<Path> candidates = new ArrayList<>();
        if (!set.isEmpty()) {
            candidates.add(Path.of(set).toAbsolutePath());
        } else {
            Path repository = repository();
            candidates.add(repository.resolveSibling("shared").resolve("peer-gateway"));
            Path dotGit = repository.resolve(".git");
            if (Files.isRegularFile(dotGit)) {
                // "gitdir: <main checkout>/.git/worktrees/<name>"
                String gitdir = Files.readString(dotGit).strip().replaceFirst("^gitdir:\\s*", "");
                Path main = Path.of(gitdir).getParent().getParent().getParent();
                candidates.add(main.resolveSibling("shared").resolve("peer-gateway"));
            }
        }
        return candidates.stream().filter(c -> Files.isRegularFile(c.resolve("start.sh"))).findFirst()
                .orElseThrow(() -> new IllegalStateException("no peer gateway (start.sh) in " + candidates
                        + "; set -Dbench.peerGateway to its directory"));
    }

    /** The repository: the nearest directory from the working directory up that holds {@code mvnw}. */
    static Path repository() {
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            if (Files.exists(d.resolve("mvnw"))) {
                return d;
            }
        }
        throw new IllegalStateException("no repository (mvnw) at or above " + Path.of("").toAbsolutePath());
    }

    /** Starts {@code start.sh port 127.0.0.1:upstreamPort redisPort dir} and waits (≤ 30 s) until the port accepts. */
    static PeerGateway start(Path home, int upstreamPort, int redisPort, Path dir) throws IOException, InterruptedException {
        Path script = home.resolve("start.sh");
        Files.createDirectories(dir);
        int port = FreePorts.pick();
        Path log = dir.resolve("start.log");
        Process p = new ProcessBuilder("bash", script.toString(), Integer.toString(port), "127.0.0.1:" + upstreamPort,
                Integer.toString(redisPort), dir.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        PeerGateway peer = new PeerGateway(dir, port, p);
        try {
            // Until it listens, or its process ends (then there is nothing to wait for).
            Awaitility.await("the peer gateway listens on port " + port).atMost(Duration.ofSeconds(30))
                    .pollInterval(Duration.ofMillis(50))
                    .until(() -> FreePorts.accepts("127.0.0.1", port, 200) || !p.isAlive());
        } catch (ConditionTimeoutException e) {
            // reported below with the logs
        }
        if (!p.isAlive() || !FreePorts.accepts("127.0.0.1", port, 200)) {
            peer.close();
            throw new IllegalStateException("the peer gateway did not start on port " + port + " within 30 s (alive "
                    + p.isAlive() + "); " + log + ":\n" + tail(log) + "\n" + dir.resolve("error.log") + ":\n"
                    + tail(dir.resolve("error.log")));
        }
        return peer;
    }

    int port() {
        return port;
    }

    Path dir() {
        return dir;
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** nginx's master (start.sh execs it, so it is the started process) and its workers. */
    List<Long> pids() {
        List<Long> pids = new ArrayList<>();
        masterPid().ifPresent(pid -> {
            pids.add(pid);
            ProcessHandle.of(pid).ifPresent(h -> h.descendants().forEach(d -> pids.add(d.pid())));
        });
        return pids;
    }

    private Optional<Long> masterPid() {
        try {
            return Optional.of(Long.parseLong(Files.readString(dir.resolve("nginx.pid")).strip()));
        } catch (IOException | NumberFormatException e) {
            return process.isAlive() ? Optional.of(process.pid()) : Optional.empty();
        }
    }

    /** SIGTERM to nginx's master (fast shutdown), up to 10 s, then SIGKILL to it and its workers. */
    private synchronized void stop() {
        Optional<ProcessHandle> master = masterPid().flatMap(ProcessHandle::of);
        List<ProcessHandle> all = new ArrayList<>();
        master.ifPresent(m -> {
            all.add(m);
            m.descendants().forEach(all::add);
        });
        all.add(process.toHandle());
        master.ifPresent(ProcessHandle::destroy);
        process.destroy();
        try {
            Awaitility.await("nginx's processes end after SIGTERM").atMost(Duration.ofSeconds(10))
                    .pollInterval(Duration.ofMillis(50))
                    .until(() -> all.stream().noneMatch(ProcessHandle::isAlive));
        } catch (ConditionTimeoutException e) {
            // the survivors are killed below
        }
        all.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
    }

    @Override
    public void close() {
        stop();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running or has run
        }
    }

    static String tail(Path file) {
        try (Stream<String> lines = Files.lines(file, StandardCharsets.UTF_8)) {
            List<String> all = lines.toList();
            return String.join("\n", all.subList(Math.max(0, all.size() - 20), all.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(no " + file.getFileName() + ")";
        }
    }

}
