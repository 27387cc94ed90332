package dev.tokenmeter.edge.redis;

import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import io.lettuce.core.RedisClient;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

/** {@link StoredScript} on a real Redis: both codecs the edge uses, and a Redis that lost its script cache. */
@ExtendWith(EnginesExtension.class)
class StoredScriptIT {

    private static final String GET_OR_SET_SOURCE =
            "local v = redis.call('get', KEYS[1]) if v then return v end redis.call('set', KEYS[1], ARGV[1]) return ARGV[1]";
    private static final StoredScript GET_OR_SET = StoredScript.of(GET_OR_SET_SOURCE);
    private static final StoredScript DELETE_IF = StoredScript.of(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0");

    @Test
    void runsAgainAfterRedisForgotItsScripts(Engines engines) {
        String key = Names.unique("stored-script");
        try (RedisClient client = RedisClient.create(engines.redis().uri());
             StatefulRedisConnection<String, String> c = client.connect()) {
            RedisCommands<String, String> redis = c.sync();
            String first = GET_OR_SET.run(redis, ScriptOutputType.VALUE, new String[]{key}, "one");
            assertThat(first).isEqualTo("one");
            redis.scriptFlush(); // what a restart or a failover to a replica does to the script cache
            String second = GET_OR_SET.run(redis, ScriptOutputType.VALUE, new String[]{key}, "two");
            assertThat(second).as("loaded again on NOSCRIPT, and it ran: the first value kept").isEqualTo("one");
            assertThat(redis.scriptExists(sha1(GET_OR_SET_SOURCE))).as("in Redis's script cache again").containsExactly(true);
        }
    }

    @Test
    void byteValuesAndAnIntegerReply(Engines engines) {
        String key = Names.unique("stored-script-bytes");
        RedisCodec<String, byte[]> codec = RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE);
        try (RedisClient client = RedisClient.create(engines.redis().uri());
             StatefulRedisConnection<String, byte[]> c = client.connect(codec)) {
            RedisCommands<String, byte[]> redis = c.sync();
            byte[] token = "token-1".getBytes(StandardCharsets.US_ASCII);
            redis.set(key, token);
            Long other = DELETE_IF.run(redis, ScriptOutputType.INTEGER, new String[]{key}, "token-2".getBytes(StandardCharsets.US_ASCII));
            assertThat(other).as("another token deletes nothing").isZero();
            redis.scriptFlush();
            Long mine = DELETE_IF.run(redis, ScriptOutputType.INTEGER, new String[]{key}, token);
            assertThat(mine).as("the holder's token deletes the key, after a reload").isEqualTo(1L);
            assertThat(redis.exists(key)).isZero();
        }
    }

    private static String sha1(String s) {
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-1").digest(s.getBytes(StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(d);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
