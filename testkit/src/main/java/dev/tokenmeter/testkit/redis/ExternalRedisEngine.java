package dev.tokenmeter.testkit.redis;

import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.support.UnmanagedServer;

import java.net.URI;

/** A Redis that is already running, named by a redis://host:port URI; this engine neither starts nor stops it. */
public final class ExternalRedisEngine extends UnmanagedServer implements RedisEngine, AutoCloseable {

    private static final int DEFAULT_PORT = 6379;

    private final String uri;
    private final String host;
    private final int port;

    /** @param uri redis://host[:port] ; {@code key} names the setting it came from, for error messages */
    public ExternalRedisEngine(String uri, String key) {
        super("external", "Redis", "it belongs to whoever runs it: " + key);
        URI parsed;
        try {
            parsed = URI.create(uri);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(key + "='" + uri + "' is not a redis://host:port URI", e);
        }
        if (!"redis".equals(parsed.getScheme()) || parsed.getHost() == null) {
            throw new IllegalArgumentException(key + "='" + uri + "' is not a redis://host:port URI");
        }
        this.uri = uri;
        this.host = parsed.getHost();
        this.port = parsed.getPort() == -1 ? DEFAULT_PORT : parsed.getPort();
    }

    @Override
    public String host() {
        return host;
    }

    @Override
    public int port() {
        return port;
    }

    /** The URI as configured (it may carry credentials, which host() and port() do not). */
    @Override
    public String uri() {
        return uri;
    }

    /** Always true: the external backend does not manage the server's life. */
    @Override
    public boolean isRunning() {
        return true;
    }

    @Override
    public void close() {
        // nothing to release
    }
}
