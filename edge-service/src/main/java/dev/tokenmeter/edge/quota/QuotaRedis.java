package dev.tokenmeter.edge.quota;

import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.ReadFrom;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.Delay;
import java.time.Duration;
import java.util.List;

/**
 * The one long-lived Lettuce connection the quota engine uses (thread-safe; commands from many threads
 * are pipelined on it). Commands fail fast while disconnected (REJECT_COMMANDS) instead of queueing,
 * so the circuit breaker sees the outage at once; reconnects are retried every 100 ms.
 *
 * <p>A {@code redis-cluster://} URI ({@link RedisEndpoint}, ADR 0080) makes it a Redis Cluster connection instead:
 * Lettuce's RedisClusterClient with adaptive and periodic topology refresh, reads and writes on masters
 * (ReadFrom.UPSTREAM); commands queue while a node is unreachable and fail at the command timeout (a cluster
 * connects to its nodes lazily, so rejecting while "disconnected" would refuse a node's first command).
 * {@link #commands()} serves both; {@link #connection()} is the standalone connection only.
 */
public final class QuotaRedis implements AutoCloseable {

    /** How often a cluster connection re-reads the topology even when nothing went wrong. */
    public static final Duration PERIODIC_TOPOLOGY_REFRESH = Duration.ofSeconds(10);

    private final AbstractRedisClient client;
    private final ClientResources resources;
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(QuotaRedis.class);
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
    private static final Duration START_WAIT = Duration.ofMinutes(2);

    private final StatefulRedisConnection<String, String> connection;
    private final StatefulConnection<String, String> any;
    private final QuotaConnection commands;

    private QuotaRedis(AbstractRedisClient client, ClientResources resources, StatefulRedisConnection<String, String> connection) {
        this.client = client;
        this.resources = resources;
        this.connection = connection;
        this.any = connection;
        this.commands = QuotaConnection.of(connection);
    }

    private QuotaRedis(AbstractRedisClient client, ClientResources resources, StatefulRedisClusterConnection<String, String> cluster) {
        this.client = client;
        this.resources = resources;
        this.connection = null;
        this.any = cluster;
        this.commands = QuotaConnection.of(cluster);
    }

    /** @param uri redis://... (standalone) or redis-cluster://...,... (Redis Cluster); see {@link RedisEndpoint} */
    public static QuotaRedis connect(String uri, Duration commandTimeout) {
        ClientResources resources = ClientResources.builder()
                .reconnectDelay(Delay.constant(Duration.ofMillis(100)))
                .build();
        RedisEndpoint endpoint = RedisEndpoint.parse(uri, "REDIS_URI");
        if (endpoint.cluster()) {
            return connectCluster(endpoint, resources, commandTimeout);
        }
        RedisURI redisUri = endpoint.nodes().get(0);
        // Connection set-up (handshake, HELLO) may take longer than a command on a busy host; commands
        // get the short timeout once connected.
        redisUri.setTimeout(commandTimeout.compareTo(CONNECT_TIMEOUT) > 0 ? commandTimeout : CONNECT_TIMEOUT);
        RedisClient client = RedisClient.create(resources, redisUri);
        client.setOptions(ClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .timeoutOptions(TimeoutOptions.enabled(commandTimeout))
                .build());
        // Redis not up yet at start-up (a deployment starting all at once): wait for it, do not crash-loop.
        return withRetry(client, resources, "Redis at " + redisUri.getHost() + ":" + redisUri.getPort(), () -> {
            StatefulRedisConnection<String, String> c = client.connect();
            c.setTimeout(commandTimeout);
            return new QuotaRedis(client, resources, c);
        });
    }

    /** Connects until it works or {@link #START_WAIT} has passed (then shuts the client down and rethrows). */
    private static QuotaRedis withRetry(AbstractRedisClient client, ClientResources resources, String what,
                                        java.util.function.Supplier<QuotaRedis> connect) {
        long deadline = System.nanoTime() + START_WAIT.toNanos();
        long backoffMs = 200;
        while (true) {
            try {
                return connect.get();
            } catch (RuntimeException e) {
                if (System.nanoTime() > deadline) {
                    client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
                    resources.shutdown();
                    throw e;
                }
                LOG.warn("{} not reachable yet ({}); retrying in {} ms", what, e.getClass().getSimpleName(), backoffMs);
                try {
                    Thread.sleep(backoffMs);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
                backoffMs = Math.min(5_000, backoffMs * 2);
            }
        }
    }

    /**
     * A Redis Cluster client: topology refresh adaptive (MOVED, ASK, reconnects) and periodic. Callers set
     * ReadFrom.UPSTREAM on its connections. {@code resources} null = the client's own (shut down with it).
     */
    public static RedisClusterClient clusterClient(ClientResources resources, RedisEndpoint endpoint, Duration commandTimeout) {
        List<RedisURI> seeds = endpoint.nodes();
        for (RedisURI seed : seeds) {
            seed.setTimeout(commandTimeout.compareTo(CONNECT_TIMEOUT) > 0 ? commandTimeout : CONNECT_TIMEOUT);
        }
        RedisClusterClient client = resources == null ? RedisClusterClient.create(seeds) : RedisClusterClient.create(resources, seeds);
        client.setOptions(ClusterClientOptions.builder()
                .autoReconnect(true)
                .timeoutOptions(TimeoutOptions.enabled(commandTimeout))
                .topologyRefreshOptions(ClusterTopologyRefreshOptions.builder()
                        .enableAllAdaptiveRefreshTriggers()
                        .enablePeriodicRefresh(PERIODIC_TOPOLOGY_REFRESH)
                        .build())
                .build());
        return client;
    }

    private static QuotaRedis connectCluster(RedisEndpoint endpoint, ClientResources resources, Duration commandTimeout) {
        RedisClusterClient client = clusterClient(resources, endpoint, commandTimeout);
        return withRetry(client, resources, "Redis Cluster (" + endpoint.nodes().size() + " seed nodes)", () -> {
            StatefulRedisClusterConnection<String, String> c = client.connect();
            c.setReadFrom(ReadFrom.UPSTREAM);
            c.setTimeout(commandTimeout);
            return new QuotaRedis(client, resources, c);
        });
    }

    /** The standalone connection; IllegalStateException on a Redis Cluster (use {@link #commands()}). */
    public StatefulRedisConnection<String, String> connection() {
        if (connection == null) {
            throw new IllegalStateException("a Redis Cluster connection: use commands()");
        }
        return connection;
    }

    /** The connection as the quota engine uses it, standalone or cluster. */
    public QuotaConnection commands() {
        return commands;
    }

    @Override
    public void close() {
        any.close();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        resources.shutdown();
    }
}
