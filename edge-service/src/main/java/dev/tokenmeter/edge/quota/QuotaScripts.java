package dev.tokenmeter.edge.quota;

import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The quota Lua scripts (src/main/resources/quota/*.lua, each prefixed with lib.lua): loaded once
 * with SCRIPT LOAD, called with EVALSHA, loaded again when Redis answers NOSCRIPT (after a restart or
 * SCRIPT FLUSH).
 */
public final class QuotaScripts {

    public enum Script { RESERVE, SETTLE, RELEASE, REBUILD, USAGE, SWEEP, RECONCILE }

    private final StatefulRedisConnection<String, String> connection;
    private final ConcurrentHashMap<Script, String> shas = new ConcurrentHashMap<>();

    public QuotaScripts(StatefulRedisConnection<String, String> connection) {
        this.connection = connection;
    }

    /** The full text of a script as loaded into Redis (lib.lua + the script). */
    public static String source(Script s) {
        return resource("lib.lua") + "\n" + resource(s.name().toLowerCase() + ".lua");
    }

    public String sha(Script s) {
        return shas.computeIfAbsent(s, k -> connection.sync().scriptLoad(source(k)));
    }

    @SuppressWarnings("unchecked")
    List<Object> call(Script s, String[] keys, String... args) {
        String sha = sha(s);
        try {
            return (List<Object>) connection.sync().evalsha(sha, ScriptOutputType.MULTI, keys, args);
        } catch (RedisNoScriptException e) {
            shas.remove(s, sha);
            return (List<Object>) connection.sync().evalsha(sha(s), ScriptOutputType.MULTI, keys, args);
        }
    }

    long callLong(Script s, String[] keys, String... args) {
        String sha = sha(s);
        try {
            return connection.sync().<Long>evalsha(sha, ScriptOutputType.INTEGER, keys, args);
        } catch (RedisNoScriptException e) {
            shas.remove(s, sha);
            return connection.sync().<Long>evalsha(sha(s), ScriptOutputType.INTEGER, keys, args);
        }
    }

    private static String resource(String name) {
        try (InputStream in = QuotaScripts.class.getResourceAsStream("/quota/" + name)) {
            if (in == null) throw new IllegalStateException("missing resource quota/" + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
