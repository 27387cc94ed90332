package dev.tokenmeter.edge.quota;

import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;

import java.time.Duration;

/**
 * What the quota engine needs of its Redis connection, the same for a standalone Redis and a Redis Cluster
 * (ADR 0080): the command interfaces both share (a standalone connection's RedisCommands and a cluster connection's
 * RedisAdvancedClusterCommands both extend RedisClusterCommands). On a cluster, Lettuce routes each command by its
 * first key's slot, broadcasts SCRIPT LOAD to every master, and runs SCAN over every master in turn (one cursor).
 */
public interface QuotaConnection {

    RedisClusterCommands<String, String> sync();

    RedisClusterAsyncCommands<String, String> async();

    boolean isOpen();

    Duration getTimeout();

    /** Whether this is a Redis Cluster (scripts and SCAN then span several masters). */
    boolean cluster();

    static QuotaConnection of(StatefulRedisConnection<String, String> connection) {
        return new QuotaConnection() {
            @Override public RedisClusterCommands<String, String> sync() { return connection.sync(); }
            @Override public RedisClusterAsyncCommands<String, String> async() { return connection.async(); }
            @Override public boolean isOpen() { return connection.isOpen(); }
            @Override public Duration getTimeout() { return connection.getTimeout(); }
            @Override public boolean cluster() { return false; }
        };
    }

    static QuotaConnection of(StatefulRedisClusterConnection<String, String> connection) {
        return new QuotaConnection() {
            @Override public RedisClusterCommands<String, String> sync() { return connection.sync(); }
            @Override public RedisClusterAsyncCommands<String, String> async() { return connection.async(); }
            @Override public boolean isOpen() { return connection.isOpen(); }
            @Override public Duration getTimeout() { return connection.getTimeout(); }
            @Override public boolean cluster() { return true; }
        };
    }
}
