package dev.tokenmeter.edge.quota;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.Delay;
import java.time.Duration;

/**
 * The one long-lived Lettuce connection the quota engine uses (thread-safe; commands from many threads
 * are pipelined on it). Commands fail fast while disconnected (REJECT_COMMANDS) instead of queueing,
 * so the circuit breaker sees the outage at once; reconnects are retried every 100 ms.
 */
public final class QuotaRedis implements AutoCloseable {

    private final RedisClient client;
    private final ClientResources resources;
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(QuotaRedis.class);
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
    private static final Duration START_WAIT = Duration.ofMinutes(2);

    private final StatefulRedisConnection<String, String> connection;

    private QuotaRedis(RedisClient client, ClientResources resources, StatefulRedisConnection<String, String> connection) {
        this.client = client;
        this.resources = resources;
        this.connection = connection;
    }

    public static QuotaRedis connect(String uri, Duration commandTimeout) {
        ClientResources resources = ClientResources.builder()
                .reconnectDelay(Delay.constant(Duration.ofMillis(100)))
                .build();
        RedisURI redisUri = RedisURI.create(uri);
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
        long deadline = System.nanoTime() + START_WAIT.toNanos();
        long backoffMs = 200;
        while (true) {
            try {
                StatefulRedisConnection<String, String> c = client.connect();
                c.setTimeout(commandTimeout);
                return new QuotaRedis(client, resources, c);
            } catch (RuntimeException e) {
                if (System.nanoTime() > deadline) {
                    client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
                    resources.shutdown();
                    throw e;
                }
                LOG.warn("Redis at {}:{} not reachable yet ({}); retrying in {} ms", redisUri.getHost(), redisUri.getPort(),
                        e.getClass().getSimpleName(), backoffMs);
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

    public StatefulRedisConnection<String, String> connection() {
        return connection;
    }

    @Override
    public void close() {
        connection.close();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        resources.shutdown();
    }
}
