package dev.tokenmeter.edge.responsecache;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SetArgs;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.ReadFrom;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import dev.tokenmeter.edge.quota.QuotaRedis;
import dev.tokenmeter.edge.quota.RedisEndpoint;
import dev.tokenmeter.edge.redis.StoredScript;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.codec.ToByteBufEncoder;
import io.netty.buffer.ByteBuf;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.atomic.LongAdder;

/**
 * The response cache's store: its own Redis (RESPONSE_CACHE_REDIS_URI), never the quota engine's — that one runs
 * {@code noeviction} so no quota key is ever dropped, while the cache's runs {@code allkeys-lru} under its
 * {@code maxmemory} and may drop any entry (ADR 0074). One long-lived Lettuce connection, string keys, byte values.
 *
 * <p>The cache is an optimisation and never fails a call: a Redis error or timeout is a miss (get) or a skipped
 * store (put), counted and logged at most once a minute; the call goes on to the upstream.
 */
public final class ResponseCache implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ResponseCache.class);
    private static final long LOG_EVERY_NANOS = Duration.ofMinutes(1).toNanos();

    private final AbstractRedisClient client;
    private final StatefulConnection<String, byte[]> connection;
    private final RedisClusterCommands<String, byte[]> sync;
    private final int maxEntryBytes;
    private final LongAdder errors = new LongAdder();
    private volatile long lastLoggedNanos = System.nanoTime() - LOG_EVERY_NANOS;

    private ResponseCache(AbstractRedisClient client, StatefulConnection<String, byte[]> connection,
                          RedisClusterCommands<String, byte[]> sync, int maxEntryBytes) {
        this.client = client;
        this.connection = connection;
        this.sync = sync;
        this.maxEntryBytes = maxEntryBytes;
    }

    /**
     * @param commandTimeout past it a lookup is a miss (RESPONSE_CACHE_TIMEOUT)
     * @param maxEntryBytes  the largest stored value (RESPONSE_CACHE_MAX_ENTRY_BYTES); larger answers are not stored
     */
    public static ResponseCache connect(String uri, Duration commandTimeout, int maxEntryBytes) {
        RedisEndpoint endpoint = RedisEndpoint.parse(uri, "RESPONSE_CACHE_REDIS_URI");
        if (endpoint.cluster()) {
            // a Redis Cluster (ADR 0080): entries spread over its masters; every command and the release script
            // name one key, so no command spans two slots
            RedisClusterClient cluster = QuotaRedis.clusterClient(null, endpoint, commandTimeout);
            StatefulRedisClusterConnection<String, byte[]> c = cluster.connect(StringKeysByteValues.CODEC);
            c.setReadFrom(ReadFrom.UPSTREAM);
            c.setTimeout(commandTimeout);
            return new ResponseCache(cluster, c, c.sync(), maxEntryBytes);
        }
        RedisURI redisUri = endpoint.nodes().get(0);
        redisUri.setTimeout(commandTimeout.compareTo(Duration.ofSeconds(5)) > 0 ? commandTimeout : Duration.ofSeconds(5));
        RedisClient client = RedisClient.create(redisUri);
        client.setOptions(ClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .timeoutOptions(TimeoutOptions.enabled(commandTimeout))
                .build());
        StatefulRedisConnection<String, byte[]> connection = client.connect(StringKeysByteValues.CODEC);
        connection.setTimeout(commandTimeout);
        return new ResponseCache(client, connection, connection.sync(), maxEntryBytes);
    }

    public int maxEntryBytes() {
        return maxEntryBytes;
    }

    /** The entry under {@code key}, or null (absent, unreadable, or Redis failed: a miss either way). */
    public CachedAnswer get(String key) {
        try {
            byte[] value = sync.get(key);
            return value == null ? null : CachedAnswer.decode(value);
        } catch (RuntimeException e) {
            failed("get", e);
            return null;
        }
    }

    /** Stores the answer for {@code ttl} when it fits within the entry bound; true when stored. */
    public boolean put(String key, CachedAnswer answer, Duration ttl) {
        if (answer.body().length > maxEntryBytes) {
            return false;
        }
        byte[] value = answer.encode();
        if (value.length > maxEntryBytes) {
            return false;
        }
        try {
            sync.set(key, value, SetArgs.Builder.px(ttl.toMillis()));
            return true;
        } catch (RuntimeException e) {
            failed("set", e);
            return false;
        }
    }

    /**
     * Single flight (issue 19): claims the lead for the entry {@code key} — the one call that goes upstream while
     * identical ones wait — for {@code lease}; the lock is {@code rcl:{tenant}:<hash>}, beside the entry.
     *
     * @return the lead's token (release it with {@link #releaseLead}), {@link #NOT_LED} when another call leads, or
     *         null when Redis failed (then nobody coordinates: the call goes upstream on its own)
     */
    public String tryLead(String key, Duration lease) {
        String token = java.util.UUID.randomUUID().toString();
        try {
            String ok = sync.set(lockKey(key), token.getBytes(java.nio.charset.StandardCharsets.US_ASCII),
                    SetArgs.Builder.nx().px(lease.toMillis()));
            return "OK".equals(ok) ? token : NOT_LED;
        } catch (RuntimeException e) {
            failed("lead", e);
            return null;
        }
    }

    /** {@link #tryLead}'s answer when another call leads. */
    public static final String NOT_LED = "";

    /** Gives the lead up (only if still held by {@code token}: an expired lease may have passed to another call). */
    public void releaseLead(String key, String token) {
        try {
            byte[] mine = token.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            RELEASE.<String, byte[], Long>run(sync, ScriptOutputType.INTEGER, new String[]{lockKey(key)}, mine);
        } catch (RuntimeException e) {
            failed("release", e); // the lease expires on its own
        }
    }

    /** Deletes the lead's lock only while it still holds the caller's token. */
    private static final StoredScript RELEASE = StoredScript.of(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0");

    private static String lockKey(String key) {
        return "rcl:" + key.substring(key.indexOf(':') + 1);
    }

    /** The connection, for tests. */
    public StatefulConnection<String, byte[]> connection() {
        return connection;
    }

    /** Lookups and stores that failed since start (the cache answered a miss or skipped the store). */
    public long errors() {
        return errors.sum();
    }

    private void failed(String what, RuntimeException e) {
        errors.increment();
        long now = System.nanoTime();
        if (now - lastLoggedNanos >= LOG_EVERY_NANOS) {
            lastLoggedNanos = now;
            LOG.warn("response cache {} failed, served as a miss ({} failures so far): {}", what, errors.sum(), e.toString());
        }
    }

    @Override
    public void close() {
        connection.close();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    }

    /** String keys (UTF-8), raw byte values. */
    private static final class StringKeysByteValues implements RedisCodec<String, byte[]>, ToByteBufEncoder<String, byte[]> {
        static final StringKeysByteValues CODEC = new StringKeysByteValues();

        @Override
        public String decodeKey(ByteBuffer bytes) {
            return StringCodec.UTF8.decodeKey(bytes);
        }

        @Override
        public byte[] decodeValue(ByteBuffer bytes) {
            return ByteArrayCodec.INSTANCE.decodeValue(bytes);
        }

        @Override
        public ByteBuffer encodeKey(String key) {
            return StringCodec.UTF8.encodeKey(key);
        }

        @Override
        public ByteBuffer encodeValue(byte[] value) {
            return ByteArrayCodec.INSTANCE.encodeValue(value);
        }

        @Override
        public void encodeKey(String key, ByteBuf target) {
            StringCodec.UTF8.encodeKey(key, target);
        }

        @Override
        public void encodeValue(byte[] value, ByteBuf target) {
            ByteArrayCodec.INSTANCE.encodeValue(value, target);
        }

        @Override
        public int estimateSize(Object keyOrValue) {
            return keyOrValue instanceof byte[] b ? b.length : StringCodec.UTF8.estimateSize(keyOrValue);
        }
    }
}
