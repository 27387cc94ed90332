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
        redisUri.setTimeout(commandTimeout);
        RedisClient client = RedisClient.create(resources, redisUri);
        client.setOptions(ClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .timeoutOptions(TimeoutOptions.enabled(commandTimeout))
                .build());
        try {
            StatefulRedisConnection<String, String> c = client.connect();
            c.setTimeout(commandTimeout);
            return new QuotaRedis(client, resources, c);
        } catch (RuntimeException e) {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            resources.shutdown();
            throw e;
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
