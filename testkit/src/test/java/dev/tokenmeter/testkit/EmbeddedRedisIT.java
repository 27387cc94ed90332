package dev.tokenmeter.testkit;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/** The Redis engine of the configured backend; resolved through the constructor on purpose. */
@ExtendWith(EnginesExtension.class)
class EmbeddedRedisIT {

    private final RedisEngine redis;

    EmbeddedRedisIT(RedisEngine redis) {
        this.redis = redis;
    }

    @Test
    void setThenGet() {
        String key = "{u:" + UUID.randomUUID() + "}:credit";
        try (RedisConnection connection = new RedisConnection(redis.uri())) {
            connection.commands().sync().set(key, "42");
            assertThat(connection.commands().sync().get(key)).isEqualTo("42");
        }
    }

    @Test
    void stopAndStartComeBackOnTheSamePort() {
        int port = redis.port();
        redis.stop();
        assertThat(redis.isRunning()).isFalse();
        assertThat(EmbeddedKafkaIT.accepts(redis.host() + ":" + port)).as("port closed while stopped").isFalse();

        redis.start();
        assertThat(redis.isRunning()).isTrue();
        assertThat(redis.port()).isEqualTo(port);
        try (RedisConnection connection = new RedisConnection(redis.uri())) {
            connection.commands().sync().set("after-restart", "yes");
            assertThat(connection.commands().sync().get("after-restart")).isEqualTo("yes");
        }
    }

    /** A client and its one connection, closed together. */
    private record RedisConnection(RedisClient client, StatefulRedisConnection<String, String> commands)
            implements AutoCloseable {
        RedisConnection(String uri) {
            this(RedisClient.create(uri));
        }

        private RedisConnection(RedisClient client) {
            this(client, client.connect());
        }

        @Override
        public void close() {
            commands.close();
            client.shutdown();
        }
    }
}
