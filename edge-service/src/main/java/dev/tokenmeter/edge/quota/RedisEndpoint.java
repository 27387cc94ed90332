package dev.tokenmeter.edge.quota;

import io.lettuce.core.RedisURI;

import java.util.ArrayList;
import java.util.List;

/**
 * A Redis the edge connects to, from one configuration value (ADR 0080): {@code redis://[user:password@]host:port}
 * (or rediss://) is a standalone server, as before; {@code redis-cluster://[user:password@]host:port,host:port,...}
 * (or rediss-cluster:// for TLS) is a Redis Cluster named by 1 to {@value #MAX_SEEDS} seed nodes, all logged in to
 * with the same credentials. Errors name the setting, never its value (it may carry a password).
 */
public record RedisEndpoint(boolean cluster, List<RedisURI> nodes) {

    public static final int MAX_SEEDS = 32;
    private static final String CLUSTER = "redis-cluster://";
    private static final String CLUSTER_TLS = "rediss-cluster://";

    public RedisEndpoint {
        nodes = List.copyOf(nodes);
    }

    /** @param key the setting the value came from, for error messages */
    public static RedisEndpoint parse(String value, String key) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException(key + " is empty");
        }
        String v = value.strip();
        boolean tls = v.startsWith(CLUSTER_TLS);
        if (!tls && !v.startsWith(CLUSTER)) {
            try {
                return new RedisEndpoint(false, List.of(RedisURI.create(v)));
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(key + " is not a redis://[user:password@]host:port URI");
            }
        }
        String rest = v.substring(tls ? CLUSTER_TLS.length() : CLUSTER.length());
        int at = rest.lastIndexOf('@');
        String userInfo = at < 0 ? "" : rest.substring(0, at + 1);
        String hosts = at < 0 ? rest : rest.substring(at + 1);
        int slash = hosts.indexOf('/');
        if (slash >= 0) {
            hosts = hosts.substring(0, slash); // a database number means nothing on a cluster (only db 0)
        }
        String[] seeds = hosts.split(",");
        if (hosts.isBlank() || seeds.length > MAX_SEEDS) {
            throw new IllegalArgumentException(key + " must name 1 to " + MAX_SEEDS
                    + " seed nodes: redis-cluster://[user:password@]host:port,host:port,...");
        }
        List<RedisURI> nodes = new ArrayList<>();
        for (String seed : seeds) {
            String s = seed.strip();
            if (s.isEmpty() || s.lastIndexOf(':') <= 0) {
                throw new IllegalArgumentException(key + ": every seed node needs host:port"
                        + " (redis-cluster://[user:password@]host:port,host:port,...)");
            }
            try {
                nodes.add(RedisURI.create((tls ? "rediss://" : "redis://") + userInfo + s));
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(key + ": a seed node is not host:port");
            }
        }
        return new RedisEndpoint(true, nodes);
    }
}
