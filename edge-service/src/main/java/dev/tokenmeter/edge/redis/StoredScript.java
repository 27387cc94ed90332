package dev.tokenmeter.edge.redis;

import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * A Lua script loaded once ({@code SCRIPT LOAD}) and run by {@code EVALSHA}, loaded again when Redis answers NOSCRIPT
 * (it restarted or failed over, and lost its script cache). For the edge's synchronous Redis users of any codec (the
 * async jobs' enqueue, the response cache's lead release); the quota engine's scripts have their own asynchronous
 * loader ({@code QuotaScripts}), whose errors map to the fail policy.
 */
public final class StoredScript {

    private final String source;
    private volatile String sha;

    private StoredScript(String source) {
        this.source = Objects.requireNonNull(source, "source");
    }

    /** A script given as text. */
    public static StoredScript of(String source) {
        return new StoredScript(source);
    }

    /** A script from the class path ({@code path} without a leading slash). */
    public static StoredScript resource(String path) {
        try (InputStream in = StoredScript.class.getResourceAsStream("/" + path)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + path);
            }
            return new StoredScript(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Runs the script; {@code type} is the reply's type ({@code VALUE}: the connection's value type, {@code INTEGER}: Long). */
    @SafeVarargs
    public final <K, V, T> T run(RedisClusterCommands<K, V> redis, ScriptOutputType type, K[] keys, V... args) {
        String s = sha;
        if (s == null) {
            s = sha = redis.scriptLoad(source);
        }
        try {
            return redis.evalsha(s, type, keys, args);
        } catch (RedisNoScriptException e) {
            s = sha = redis.scriptLoad(source);
            return redis.evalsha(s, type, keys, args);
        }
    }
}
