package dev.tokenmeter.testkit.redis;

import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.support.FreePorts;
import dev.tokenmeter.testkit.support.ManagedServer;
import redis.embedded.RedisServer;

import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * A real redis-server (6.2, the binary shipped in embedded-redis) on a free loopback port, without persistence:
 * a stop loses the data, as a Redis without AOF/RDB would.
 */
public final class EmbeddedRedisEngine extends ManagedServer implements RedisEngine {

    private static final String HOST = "127.0.0.1";

    private final int port;
    private final RedisServer server;

    private EmbeddedRedisEngine(int port) {
        super("Redis");
        this.port = port;
        try {
            this.server = RedisServer.newRedisServer()
                    .port(port)
                    .bind(HOST)
                    .setting("save \"\"")
                    .setting("appendonly no")
                    .setting("protected-mode yes")
                    .build();
        } catch (IOException e) {
            throw new UncheckedIOException("could not prepare the embedded Redis binary", e);
        }
    }

    public static EmbeddedRedisEngine launch() {
        return launch(new EmbeddedRedisEngine(FreePorts.pick()));
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
    public String uri() {
        return "redis://" + HOST + ":" + port;
    }

    @Override
    protected void startServer() {
        try {
            server.start();
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("the embedded Redis did not start on " + HOST + ":" + port, e);
        }
    }

    @Override
    protected void stopServer() {
        try {
            server.stop();
        } catch (IOException e) {
            throw new UncheckedIOException("could not stop the embedded Redis on port " + port, e);
        }
    }

    @Override
    protected boolean running() {
        return server.isActive();
    }

    @Override
    protected String where() {
        return HOST + ":" + port;
    }
}
