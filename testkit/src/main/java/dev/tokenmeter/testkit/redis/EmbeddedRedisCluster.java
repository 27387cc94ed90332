package dev.tokenmeter.testkit.redis;

import dev.tokenmeter.testkit.support.FreePorts;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

/**
 * A Redis Cluster of the machine's redis-server: {@code masters} masters with {@code replicasPerMaster} replicas each
 * (default 3 x 1), every node an {@link EmbeddedRedisEngine} on a free loopback port with its cluster bus on another
 * free port ({@code cluster-port}; never port + 10000, which may be taken or above 65535). Slots are split evenly
 * over the masters, nodes introduced with CLUSTER MEET and replicas attached with CLUSTER REPLICATE, all over a plain
 * socket ({@link RespClient}); {@link #launch} returns once every node reports {@code cluster_state:ok} and every
 * replica's link to its master is up. {@code cluster-node-timeout} is {@value #NODE_TIMEOUT_MILLIS} ms, so a killed
 * master's replica is promoted a few seconds later. All nodes share one ACL user and password (a cluster client logs
 * in to every node with the same credentials); the default user is off, as in the single engine.
 */
public final class EmbeddedRedisCluster implements AutoCloseable {

    public static final int SLOTS = 16384;
    public static final long NODE_TIMEOUT_MILLIS = 2_000;
    private static final String HOST = "127.0.0.1";
    private static final Duration FORM_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration FAILOVER_TIMEOUT = Duration.ofSeconds(30);

    private final List<EmbeddedRedisEngine> nodes = new ArrayList<>();
    private final String password = EmbeddedRedisEngine.newPassword();

    private EmbeddedRedisCluster() {
    }

    /** Three masters with one replica each. */
    public static EmbeddedRedisCluster launch() {
        return launch(3, 1);
    }

    public static EmbeddedRedisCluster launch(int masters, int replicasPerMaster) {
        if (masters < 1 || replicasPerMaster < 0) {
            throw new IllegalArgumentException("a cluster needs at least one master and no negative replica count");
        }
        EmbeddedRedisCluster cluster = new EmbeddedRedisCluster();
        try {
            cluster.form(masters, replicasPerMaster);
        } catch (RuntimeException e) {
            cluster.close();
            throw e;
        }
        return cluster;
    }

    private void form(int masterCount, int replicasPerMaster) {
        var binary = EmbeddedRedisEngine.findBinary();
        int total = masterCount * (1 + replicasPerMaster);
        for (int i = 0; i < total; i++) {
            nodes.add(EmbeddedRedisEngine.launchClusterNode(binary, FreePorts.pick(), FreePorts.pick(), password, NODE_TIMEOUT_MILLIS));
        }
        List<String> ids = new ArrayList<>();
        for (EmbeddedRedisEngine node : nodes) {
            try (RespClient client = client(node)) {
                ids.add(client.text("CLUSTER", "MYID"));
            }
        }
        for (int m = 0; m < masterCount; m++) {
            int first = m * SLOTS / masterCount;
            int last = (m + 1) * SLOTS / masterCount - 1;
            try (RespClient client = client(nodes.get(m))) {
                client.call("CLUSTER", "ADDSLOTSRANGE", Integer.toString(first), Integer.toString(last));
            }
        }
        try (RespClient first = client(nodes.get(0))) {
            for (EmbeddedRedisEngine node : nodes.subList(1, nodes.size())) {
                first.call("CLUSTER", "MEET", HOST, Integer.toString(node.port()), Integer.toString(busPort(node)));
            }
        }
        await("every node knows all " + total + " nodes", FORM_TIMEOUT,
                () -> nodes.stream().allMatch(n -> clusterNodes(n).size() == total));
        for (int r = masterCount; r < total; r++) {
            String masterId = ids.get((r - masterCount) % masterCount);
            EmbeddedRedisEngine replica = nodes.get(r);
            // the replica must have learnt the master's id through the bus first; retry until it has
            await("node " + replica.port() + " replicates " + masterId, FORM_TIMEOUT, () -> {
                try (RespClient client = client(replica)) {
                    client.call("CLUSTER", "REPLICATE", masterId);
                    return true;
                } catch (IllegalStateException notYet) {
                    return false;
                }
            });
        }
        awaitHealthy(FORM_TIMEOUT);
    }

    /** Every node, masters first as formed (roles change after a failover: see {@link #masters()}). */
    public List<EmbeddedRedisEngine> nodes() {
        return List.copyOf(nodes);
    }

    /** The nodes that are masters now, as the running nodes see it. */
    public List<EmbeddedRedisEngine> masters() {
        return nodesWithRole("master");
    }

    public List<EmbeddedRedisEngine> replicas() {
        return nodesWithRole("slave");
    }

    /** The running master that serves {@code slot} now. */
    public EmbeddedRedisEngine masterOf(int slot) {
        for (EmbeddedRedisEngine node : masters()) {
            Optional<NodeLine> line = clusterNodes(node).stream().filter(l -> l.flags.contains("myself")).findFirst();
            if (line.isPresent() && line.get().servesSlot(slot)) {
                return node;
            }
        }
        throw new IllegalStateException("no running master serves slot " + slot);
    }

    public String host() {
        return HOST;
    }

    public String user() {
        return EmbeddedRedisEngine.USER;
    }

    /** The password of every node; never print it. */
    public String password() {
        return password;
    }

    /** One redis://user:password@host:port URI per node (seeds for a cluster client); they carry the password. */
    public List<String> nodeUris() {
        return nodes.stream().map(EmbeddedRedisEngine::uri).toList();
    }

    /**
     * {@code redis-cluster://user:password@host:port,host:port,...} naming every node as a seed: the cluster form of
     * the services' REDIS_URI (edge-service README). It carries the password: never print it.
     */
    public String uri() {
        return "redis-cluster://" + user() + ":" + password + "@"
                + nodes.stream().map(n -> HOST + ":" + n.port()).collect(Collectors.joining(","));
    }

    /** SIGKILL one node (a crashed machine); its replica takes over after {@code cluster-node-timeout}. */
    public void kill(EmbeddedRedisEngine node) {
        node.kill();
    }

    /** Starts a stopped or killed node again on its port, with its identity (nodes.conf); it rejoins the cluster. */
    public void restart(EmbeddedRedisEngine node) {
        node.start();
    }

    /**
     * Waits until the running nodes agree the cluster is whole again: each reports cluster_state:ok, every slot has
     * a running master, and every running replica's link to its master is up.
     */
    public void awaitHealthy() {
        awaitHealthy(FAILOVER_TIMEOUT);
    }

    private void awaitHealthy(Duration timeout) {
        await("cluster_state:ok on every running node, all slots on running masters", timeout, () -> {
            List<EmbeddedRedisEngine> running = nodes.stream().filter(EmbeddedRedisEngine::isRunning).toList();
            for (EmbeddedRedisEngine node : running) {
                try (RespClient client = client(node)) {
                    if (!client.text("CLUSTER", "INFO").contains("cluster_state:ok")) {
                        return false;
                    }
                    String replication = client.text("INFO", "replication");
                    if (replication.contains("role:slave") && !replication.contains("master_link_status:up")) {
                        return false;
                    }
                } catch (RuntimeException down) {
                    return false;
                }
            }
            long covered = masters().stream().flatMap(n -> clusterNodes(n).stream().filter(l -> l.flags.contains("myself")))
                    .mapToLong(NodeLine::slotCount).sum();
            return covered == SLOTS;
        });
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (EmbeddedRedisEngine node : nodes) {
            try {
                node.close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    private List<EmbeddedRedisEngine> nodesWithRole(String role) {
        List<EmbeddedRedisEngine> result = new ArrayList<>();
        for (EmbeddedRedisEngine node : nodes) {
            if (!node.isRunning()) {
                continue;
            }
            try (RespClient client = client(node)) {
                if (client.text("INFO", "replication").contains("role:" + role)) {
                    result.add(node);
                }
            } catch (RuntimeException down) {
                // a node that is going down is neither
            }
        }
        return result;
    }

    private RespClient client(EmbeddedRedisEngine node) {
        return new RespClient(HOST, node.port(), EmbeddedRedisEngine.USER, password);
    }

    private int busPort(EmbeddedRedisEngine node) {
        return node.busPort();
    }

    private List<NodeLine> clusterNodes(EmbeddedRedisEngine node) {
        try (RespClient client = client(node)) {
            return client.text("CLUSTER", "NODES").lines().filter(l -> !l.isBlank()).map(NodeLine::parse).toList();
        } catch (RuntimeException down) {
            return List.of();
        }
    }

    private static void await(String what, Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the embedded Redis Cluster: not true after " + timeout.toSeconds() + " s: " + what);
            }
            try {
                Thread.sleep(100); // polling cluster state; Redis offers nothing to wait on
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for: " + what, e);
            }
        }
    }

    /** One line of CLUSTER NODES: id, address, flags and (for a master) its slot ranges. */
    private record NodeLine(String id, String flags, List<int[]> slots) {

        static NodeLine parse(String line) {
            String[] f = line.split(" ");
            List<int[]> ranges = new ArrayList<>();
            for (int i = 8; i < f.length; i++) {
                if (f[i].startsWith("[")) {
                    continue; // a slot being migrated or imported
                }
                String[] range = f[i].split("-");
                int from = Integer.parseInt(range[0]);
                ranges.add(new int[] {from, range.length == 1 ? from : Integer.parseInt(range[1])});
            }
            return new NodeLine(f[0], f[2], ranges);
        }

        boolean servesSlot(int slot) {
            return slots.stream().anyMatch(r -> slot >= r[0] && slot <= r[1]);
        }

        long slotCount() {
            return slots.stream().mapToLong(r -> r[1] - r[0] + 1L).sum();
        }
    }
}
