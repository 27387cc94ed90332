package dev.tokenmeter.testkit;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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

    /** Issue 13: Redis requires a password; no client gets in without the ACL user's credentials. */
    @Test
    void anUnauthenticatedClientIsRefused() throws IOException {
        assertThat(redis.uri()).as("the URI every client uses carries the ACL user").contains("://" + redis.user() + ":");
        assertThat(redis.password()).as("a password is set").isNotBlank();

        assertThat(rawCommand("PING")).as("no AUTH").startsWith("-NOAUTH");
        assertThat(rawCommand("AUTH default ''")).as("the default user is off").startsWith("-WRONGPASS");
        assertThat(rawCommand("AUTH " + redis.user() + " wrong-password")).as("a wrong password").startsWith("-WRONGPASS");

        RedisClient anonymous = RedisClient.create("redis://" + redis.host() + ":" + redis.port());
        try {
            assertThatThrownBy(() -> {
                try (StatefulRedisConnection<String, String> connection = anonymous.connect()) {
                    connection.sync().set("anonymous", "write");
                }
            }).as("a Lettuce client without credentials").hasStackTraceContaining("NOAUTH");
        } finally {
            anonymous.shutdown();
        }
        try (RedisConnection connection = new RedisConnection(redis.uri())) {
            assertThat(connection.commands().sync().get("anonymous")).as("nothing was written").isNull();
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

    /** One inline command on a fresh socket, without logging in; returns the first reply line. */
    private String rawCommand(String command) throws IOException {
        try (Socket socket = new Socket(redis.host(), redis.port())) {
            socket.setSoTimeout(5_000);
            socket.getOutputStream().write((command + "\r\n").getBytes(StandardCharsets.UTF_8));
            socket.getOutputStream().flush();
            return new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8)).readLine();
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
