package dev.tokenmeter.testkit.redis;

import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.support.FreePorts;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import redis.embedded.RedisServer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.TimeUnit;

/**
 * A real redis-server (6.2, the binary shipped in embedded-redis) on a free loopback port, without persistence:
 * a stop loses the data, as a Redis without AOF/RDB would.
 */
public final class EmbeddedRedisEngine implements RedisEngine, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedRedisEngine.class);
    private static final String HOST = "127.0.0.1";

    private final int port;
    private final RedisServer server;
    private final Thread shutdownHook;
    private boolean closed;

    private EmbeddedRedisEngine(int port) {
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
        this.shutdownHook = new Thread(this::closeQuietly, "tokenmeter-redis-shutdown");
    }

    public static EmbeddedRedisEngine launch() {
        EmbeddedRedisEngine engine = new EmbeddedRedisEngine(FreePorts.pick());
        Runtime.getRuntime().addShutdownHook(engine.shutdownHook);
        try {
            engine.start();
        } catch (RuntimeException e) {
            engine.close();
            throw e;
        }
        return engine;
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
    public synchronized void stop() {
        if (!server.isActive()) {
            return;
        }
        try {
            server.stop();
        } catch (IOException e) {
            throw new UncheckedIOException("could not stop the embedded Redis on port " + port, e);
        }
    }

    @Override
    public synchronized void start() {
        if (closed) {
            throw new IllegalStateException("this Redis engine is closed");
        }
        if (server.isActive()) {
            return;
        }
        long startNanos = System.nanoTime();
        try {
            server.start();
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("the embedded Redis did not start on " + HOST + ":" + port, e);
        }
        LOG.info("embedded Redis ready on {}:{} in {} ms", HOST, port,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos));
    }

    @Override
    public synchronized boolean isRunning() {
        return server.isActive();
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            stop();
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException alreadyShuttingDown) {
                // we are running inside the hook
            }
        }
    }

    private void closeQuietly() {
        try {
            close();
        } catch (RuntimeException ignored) {
            // JVM is exiting
        }
    }
}
