package dev.tokenmeter.edge.async;

import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * A Lua script from the class path with a string reply, loaded once ({@code SCRIPT LOAD}) and run by {@code EVALSHA};
 * loaded again when Redis answers NOSCRIPT (it restarted or failed over).
 */
final class StoredScript {

    private final String source;
    private volatile String sha;

    private StoredScript(String source) {
        this.source = source;
    }

    static StoredScript resource(String path) {
        try (InputStream in = StoredScript.class.getResourceAsStream("/" + path)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + path);
            }
            return new StoredScript(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    String run(RedisClusterCommands<String, String> redis, String[] keys, String[] args) {
        String s = sha;
        if (s == null) {
            s = sha = redis.scriptLoad(source);
        }
        try {
            return redis.evalsha(s, ScriptOutputType.VALUE, keys, args);
        } catch (RedisNoScriptException e) {
            sha = redis.scriptLoad(source);
            return redis.evalsha(sha, ScriptOutputType.VALUE, keys, args);
        }
    }
}
