package dev.tokenmeter.edge.quota;

import io.lettuce.core.LettuceFutures;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.output.CommandOutput;
import io.lettuce.core.output.IntegerOutput;
import io.lettuce.core.output.NestedMultiOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The quota Lua scripts (src/main/resources/quota/*.lua, each prefixed with lib.lua): loaded once
 * with SCRIPT LOAD, called with EVALSHA, loaded again when Redis answers NOSCRIPT (after a restart or
 * SCRIPT FLUSH).
 *
 * <p>A call is one command on the shared connection, encoded on the caller's thread: the SHA, keys and
 * string arguments as bytes, numbers as Redis integers (no {@code Long.toString}), so the event loop only
 * copies bytes; and it waits for the reply on the command's future with the connection's timeout (what
 * Lettuce's sync API does, without its reflective proxy). The connection's timeout, disconnected
 * behaviour and error mapping ({@code RedisNoScriptException}, {@code RedisCommandTimeoutException}) are
 * those of any other command.
 */
public final class QuotaScripts {

    public enum Script { RESERVE, ADMIT, SETTLE, RELEASE, REBUILD, USAGE, SWEEP, RECONCILE, HANDOVER, REBUILD_KEY,
        TENANT_RESERVE, TENANT_CLOSE, TENANT_REBUILD }

    private record Loaded(String sha, byte[] shaBytes) {}

    private final QuotaConnection connection;
    private final RedisClusterAsyncCommands<String, String> async;
    private final ConcurrentHashMap<Script, Loaded> shas = new ConcurrentHashMap<>();

    public QuotaScripts(StatefulRedisConnection<String, String> connection) {
        this(QuotaConnection.of(connection));
    }

    /**
     * On a cluster, SCRIPT LOAD goes to every master (Lettuce broadcasts it) and each EVALSHA to the master of its
     * first key's slot (keys are added as keys, so Lettuce can route them; every script's keys share one {u:id}
     * tag, or one {t:tenant} tag for the tenant scripts). A promoted replica has no scripts: its NOSCRIPT reloads them everywhere.
     */
    public QuotaScripts(QuotaConnection connection) {
        this.connection = connection;
        this.async = connection.async();
    }

    /** The full text of a script as loaded into Redis (lib.lua + the script). */
    public static String source(Script s) {
        return resource("lib.lua") + "\n" + resource(s.name().toLowerCase() + ".lua");
    }

    public String sha(Script s) {
        return loaded(s).sha();
    }

    private Loaded loaded(Script s) {
        return shas.computeIfAbsent(s, k -> {
            String sha = connection.sync().scriptLoad(source(k));
            return new Loaded(sha, sha.getBytes(StandardCharsets.US_ASCII));
        });
    }

    /**
     * EVALSHA with a multi-bulk reply. {@code args}: {@code Long}/{@code Integer} go as integers,
     * {@code String} as UTF-8, {@code byte[]} as they are (pre-encoded constants).
     */
    List<Object> call(Script s, String[] keys, Object... args) {
        byte[][] k = encode(keys);
        return run(s, () -> new NestedMultiOutput<>(StringCodec.UTF8), routeKey(keys), k, args);
    }

    long callLong(Script s, String[] keys, Object... args) {
        byte[][] k = encode(keys);
        return run(s, () -> new IntegerOutput<>(StringCodec.UTF8), routeKey(keys), k, args);
    }

    /** On a cluster the first key, which Lettuce routes the EVALSHA by; none on a standalone Redis. */
    private String routeKey(String[] keys) {
        return connection.cluster() && keys.length > 0 ? keys[0] : null;
    }

    private <T> T run(Script s, Supplier<CommandOutput<String, String, T>> output, String routeKey, byte[][] keys, Object[] args) {
        Loaded l = loaded(s);
        try {
            return await(async.dispatch(CommandType.EVALSHA, output.get(), args(l, routeKey, keys, args)));
        } catch (RedisNoScriptException e) {
            shas.remove(s, l);
            return await(async.dispatch(CommandType.EVALSHA, output.get(), args(loaded(s), routeKey, keys, args)));
        }
    }

    private <T> T await(RedisFuture<T> f) {
        return LettuceFutures.awaitOrCancel(f, connection.getTimeout().toNanos(), TimeUnit.NANOSECONDS);
    }

    private static CommandArgs<String, String> args(Loaded l, String routeKey, byte[][] keys, Object[] args) {
        CommandArgs<String, String> a = new CommandArgs<>(StringCodec.UTF8).add(l.shaBytes()).add(keys.length);
        for (int i = 0; i < keys.length; i++) {
            if (i == 0 && routeKey != null) {
                a.addKey(routeKey); // the same bytes, marked as a key so the cluster writer routes by its slot
            } else {
                a.add(keys[i]);
            }
        }
        for (Object o : args) {
            switch (o) {
                case Long v -> a.add(v.longValue()); // add(Object) would encode it through the codec as a string
                case Integer v -> a.add(v.longValue());
                case String v -> a.add(v.getBytes(StandardCharsets.UTF_8));
                case byte[] v -> a.add(v);
                default -> throw new IllegalArgumentException("unsupported script argument type " + o.getClass().getName());
            }
        }
        return a;
    }

    private static byte[][] encode(String[] keys) {
        byte[][] out = new byte[keys.length][];
        for (int i = 0; i < keys.length; i++) out[i] = keys[i].getBytes(StandardCharsets.UTF_8);
        return out;
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
