package dev.tokenmeter.testkit.redis;

import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.support.UnmanagedServer;

import java.net.URI;

/** A Redis that is already running, named by a redis://[user:password@]host:port URI; this engine neither starts nor stops it. */
public final class ExternalRedisEngine extends UnmanagedServer implements RedisEngine, AutoCloseable {

    private static final int DEFAULT_PORT = 6379;

    private final String uri;
    private final String host;
    private final int port;
    private final String user;
    private final String password;

    /** @param uri redis://[user:password@]host[:port] ; {@code key} names the setting it came from, for error messages */
    public ExternalRedisEngine(String uri, String key) {
        super("external", "Redis", "it belongs to whoever runs it: " + key);
        URI parsed;
        try {
            parsed = URI.create(uri);
        } catch (IllegalArgumentException e) {
            // the URI may carry a password: name the key, never echo the value
            throw new IllegalArgumentException(key + " is not a redis://[user:password@]host:port URI", e);
        }
        if (!"redis".equals(parsed.getScheme()) || parsed.getHost() == null) {
            throw new IllegalArgumentException(key + " is not a redis://[user:password@]host:port URI");
        }
        String userInfo = parsed.getUserInfo() == null ? "" : parsed.getUserInfo();
        int colon = userInfo.indexOf(':');
        this.user = colon < 0 ? "" : userInfo.substring(0, colon);
        this.password = colon < 0 ? userInfo : userInfo.substring(colon + 1);
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

    @Override
    public String user() {
        return user;
    }

    @Override
    public String password() {
        return password;
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
