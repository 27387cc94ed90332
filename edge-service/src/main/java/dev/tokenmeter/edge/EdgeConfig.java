package dev.tokenmeter.edge;

import java.net.URI;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Everything the edge reads from its environment, in one immutable record. Every key has a default and a
 * one-line description ({@link #KEYS}); a bad value fails start-up with a message that names the key.
 * Secrets ({@code OPENAI_API_KEY}, {@code PERSONAL_KEY_MASTER_KEY}, {@code DATABASE_PASSWORD}, {@code ADMIN_TOKEN}) never appear in
 * {@link #toString()}.
 */
public record EdgeConfig(
        String host,
        int port,
        URI upstreamBaseUrl,
        String openAiApiKey,
        Duration upstreamConnectTimeout,
        Duration upstreamRequestTimeout,
        long maxBodyBytes,
        long defaultMaxCompletionTokens,
        String defaultPriceModel,
        Duration priceRefreshInterval,
        Duration apiKeyCacheTtl,
        String databaseUrl,
        String databaseUser,
        String databasePassword,
        int databasePoolSize,
        String redisUri,
        String kafkaBootstrapServers,
        String topicPrefix,
        String personalKeyMasterKeyId,
        String personalKeyMasterKey,
        String edgeInstance,
        java.nio.file.Path spoolDir,
        long spoolMaxBytes,
        Duration spoolFsyncInterval,
        Duration spoolSendTimeout,
        String adminToken) {

    /** One documented setting: its environment variable, default and description. */
    public record Key(String name, String defaultValue, String description) {
    }

    public static final List<Key> KEYS = List.of(
            new Key("EDGE_HOST", "127.0.0.1", "Interface the HTTP server binds to."),
            new Key("EDGE_PORT", "8080", "HTTP port (0 = a free port)."),
            new Key("UPSTREAM_BASE_URL", "https://api.openai.com", "OpenAI-compatible upstream; the /v1/... path is appended (a trailing /v1 is accepted)."),
            new Key("OPENAI_API_KEY", "", "The service's own OpenAI key, used for SERVICE_CREDIT calls. Never logged."),
            new Key("UPSTREAM_CONNECT_TIMEOUT", "5s", "Connect timeout to the upstream (e.g. 500ms, 5s)."),
            new Key("UPSTREAM_REQUEST_TIMEOUT", "120s", "Longest wait for the upstream's response headers (past it the caller gets 504) or, in a streamed answer, for its next bytes."),
            new Key("MAX_BODY_BYTES", "4194304", "Largest accepted request body in bytes; larger gets 413."),
            new Key("DEFAULT_MAX_COMPLETION_TOKENS", "1024", "Completion tokens assumed for the quota estimate when the request sets no max_tokens."),
            new Key("DEFAULT_PRICE_MODEL", "", "Price a model without a price row like this model; empty = reject unknown models with 400."),
            new Key("PRICE_REFRESH_INTERVAL", "30s", "How often the price book reloads model_price."),
            new Key("API_KEY_CACHE_TTL", "5s", "How long a looked-up service API key (or its absence/revocation) is cached."),
            new Key("DATABASE_URL", "jdbc:postgresql://127.0.0.1:5432/tokenmeter", "JDBC URL of the Postgres database with the Flyway schema."),
            new Key("DATABASE_USER", "tokenmeter", "Postgres user."),
            new Key("DATABASE_PASSWORD", "", "Postgres password. Never logged."),
            new Key("DATABASE_POOL_SIZE", "10", "Connections in the pool."),
            new Key("REDIS_URI", "redis://127.0.0.1:6379", "Redis for the quota engine."),
            new Key("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka bootstrap servers for usage events."),
            new Key("TOPIC_PREFIX", "", "Prefix of every topic name (see usage-events Topics)."),
            new Key("PERSONAL_KEY_MASTER_KEY_ID", "k1", "Id of the master key that seals users' own provider keys."),
            new Key("PERSONAL_KEY_MASTER_KEY", "", "Base64 of 32 random bytes (AES-256) sealing users' own provider keys; empty disables personal keys. Never logged."),
            new Key("EDGE_INSTANCE", "edge-1", "Name of this edge in usage events."),
            new Key("SPOOL_DIR", "./spool", "Directory of the durable local event spool (used while Kafka is unreachable); must survive restarts."),
            new Key("SPOOL_MAX_BYTES", "1073741824", "Largest spool size in bytes; past it calls are refused with 503 instead of losing events."),
            new Key("SPOOL_FSYNC_INTERVAL", "2ms", "Group-commit interval of the spool: spooled events wait at most this long (plus the fsync) for durability."),
            new Key("SPOOL_SEND_TIMEOUT", "2s", "An event Kafka has not acknowledged within this time switches the edge to spooling."),
            new Key("ADMIN_TOKEN", "", "Bearer token of the admin API (/admin/...); empty disables the admin API. Never logged."));

    public EdgeConfig {
        upstreamBaseUrl = normalizeUpstream(upstreamBaseUrl);
    }

    public static EdgeConfig fromEnv() {
        return fromEnv(System.getenv());
    }

    /** Reads every key from {@code env}, falling back to its default. */
    public static EdgeConfig fromEnv(Map<String, String> env) {
        Reader r = new Reader(env);
        return new EdgeConfig(
                r.string("EDGE_HOST"),
                r.integer("EDGE_PORT", 0, 65535),
                r.parse("UPSTREAM_BASE_URL", EdgeConfig::httpUri),
                r.string("OPENAI_API_KEY"),
                r.duration("UPSTREAM_CONNECT_TIMEOUT"),
                r.duration("UPSTREAM_REQUEST_TIMEOUT"),
                r.longValue("MAX_BODY_BYTES", 1, 1L << 30),
                r.longValue("DEFAULT_MAX_COMPLETION_TOKENS", 1, 10_000_000),
                r.string("DEFAULT_PRICE_MODEL"),
                r.duration("PRICE_REFRESH_INTERVAL"),
                r.duration("API_KEY_CACHE_TTL"),
                r.parse("DATABASE_URL", v -> {
                    if (!v.startsWith("jdbc:postgresql:")) {
                        throw new IllegalArgumentException("must start with jdbc:postgresql:");
                    }
                    return v;
                }),
                r.string("DATABASE_USER"),
                r.string("DATABASE_PASSWORD"),
                r.integer("DATABASE_POOL_SIZE", 1, 500),
                r.string("REDIS_URI"),
                r.string("KAFKA_BOOTSTRAP_SERVERS"),
                r.string("TOPIC_PREFIX"),
                r.string("PERSONAL_KEY_MASTER_KEY_ID"),
                r.string("PERSONAL_KEY_MASTER_KEY"),
                r.string("EDGE_INSTANCE"),
                r.parse("SPOOL_DIR", v -> {
                    if (v.isBlank()) {
                        throw new IllegalArgumentException("must not be empty");
                    }
                    return java.nio.file.Path.of(v);
                }),
                r.longValue("SPOOL_MAX_BYTES", 1024, Long.MAX_VALUE),
                r.duration("SPOOL_FSYNC_INTERVAL"),
                r.duration("SPOOL_SEND_TIMEOUT"),
                r.string("ADMIN_TOKEN"));
    }

    /** The documented defaults, for tests and {@code --help}. */
    public static EdgeConfig defaults() {
        return fromEnv(Map.of());
    }

    /** Key, default and description of every setting, one per line. */
    public static String describe() {
        StringBuilder sb = new StringBuilder();
        for (Key k : KEYS) {
            sb.append(k.name()).append(" (default '").append(k.defaultValue()).append("'): ").append(k.description()).append('\n');
        }
        return sb.toString();
    }

    public EdgeConfig withUpstream(String baseUrl, String apiKey) {
        return new EdgeConfig(host, port, URI.create(baseUrl), apiKey, upstreamConnectTimeout, upstreamRequestTimeout,
                maxBodyBytes, defaultMaxCompletionTokens, defaultPriceModel, priceRefreshInterval, apiKeyCacheTtl,
                databaseUrl, databaseUser, databasePassword, databasePoolSize, redisUri, kafkaBootstrapServers,
                topicPrefix, personalKeyMasterKeyId, personalKeyMasterKey, edgeInstance, spoolDir, spoolMaxBytes,
                spoolFsyncInterval, spoolSendTimeout, adminToken);
    }

    /** Parses OpenAI-style durations too: 500ms, 5s, 2m, 1h, or a bare number of milliseconds. */
    static Duration parseDuration(String text) {
        String t = text.strip().toLowerCase();
        if (t.startsWith("p")) {
            return Duration.parse(t.toUpperCase());
        }
        long factorMs;
        String number;
        if (t.endsWith("ms")) {
            factorMs = 1;
            number = t.substring(0, t.length() - 2);
        } else if (t.endsWith("s")) {
            factorMs = 1000;
            number = t.substring(0, t.length() - 1);
        } else if (t.endsWith("m")) {
            factorMs = 60_000;
            number = t.substring(0, t.length() - 1);
        } else if (t.endsWith("h")) {
            factorMs = 3_600_000;
            number = t.substring(0, t.length() - 1);
        } else {
            factorMs = 1;
            number = t;
        }
        long value = Long.parseLong(number.strip());
        if (value < 0) {
            throw new IllegalArgumentException("must not be negative");
        }
        return Duration.ofMillis(Math.multiplyExact(value, factorMs));
    }

    private static URI httpUri(String v) {
        URI uri = URI.create(v.strip());
        if (uri.getScheme() == null || !(uri.getScheme().equals("http") || uri.getScheme().equals("https")) || uri.getHost() == null) {
            throw new IllegalArgumentException("must be an http(s) URL like https://api.openai.com");
        }
        return uri;
    }

    private static URI normalizeUpstream(URI uri) {
        String s = uri.toString();
        while (s.endsWith("/")) {
            s = s.substring(0, s.length() - 1);
        }
        if (s.endsWith("/v1")) {
            s = s.substring(0, s.length() - 3);
        }
        return URI.create(s);
    }

    @Override
    public String toString() {
        return "EdgeConfig[host=" + host + ", port=" + port + ", upstreamBaseUrl=" + upstreamBaseUrl
                + ", openAiApiKey=" + (openAiApiKey.isEmpty() ? "<unset>" : "<redacted>")
                + ", upstreamConnectTimeout=" + upstreamConnectTimeout + ", upstreamRequestTimeout=" + upstreamRequestTimeout
                + ", maxBodyBytes=" + maxBodyBytes + ", defaultMaxCompletionTokens=" + defaultMaxCompletionTokens
                + ", defaultPriceModel=" + defaultPriceModel + ", priceRefreshInterval=" + priceRefreshInterval
                + ", apiKeyCacheTtl=" + apiKeyCacheTtl + ", databaseUrl=" + databaseUrl + ", databaseUser=" + databaseUser
                + ", databasePoolSize=" + databasePoolSize + ", redisUri=" + redisUri
                + ", kafkaBootstrapServers=" + kafkaBootstrapServers + ", topicPrefix=" + topicPrefix
                + ", personalKeyMasterKeyId=" + personalKeyMasterKeyId
                + ", personalKeyMasterKey=" + (personalKeyMasterKey.isEmpty() ? "<unset>" : "<redacted>")
                + ", edgeInstance=" + edgeInstance + ", spoolDir=" + spoolDir + ", spoolMaxBytes=" + spoolMaxBytes
                + ", spoolFsyncInterval=" + spoolFsyncInterval + ", spoolSendTimeout=" + spoolSendTimeout
                + ", adminToken=" + (adminToken.isEmpty() ? "<unset>" : "<redacted>") + "]";
    }

    /** Reads keys with their defaults and collects every bad value, so one start-up names all of them. */
    private static final class Reader {
        private final Map<String, String> env;
        private final Map<String, Key> keys = new LinkedHashMap<>();

        Reader(Map<String, String> env) {
            this.env = env;
            KEYS.forEach(k -> keys.put(k.name(), k));
        }

        String raw(String name) {
            Key key = keys.get(name);
            if (key == null) {
                throw new IllegalStateException("undocumented config key " + name);
            }
            String v = env.get(name);
            return v == null ? key.defaultValue() : v.strip();
        }

        String string(String name) {
            return raw(name);
        }

        <T> T parse(String name, Function<String, T> parser) {
            String v = raw(name);
            try {
                return parser.apply(v);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("config " + name + "='" + v + "' is invalid: " + e.getMessage(), e);
            }
        }

        int integer(String name, int min, int max) {
            return (int) longValue(name, min, max);
        }

        long longValue(String name, long min, long max) {
            return parse(name, v -> {
                long n = Long.parseLong(v);
                if (n < min || n > max) {
                    throw new IllegalArgumentException("must be between " + min + " and " + max);
                }
                return n;
            });
        }

        Duration duration(String name) {
            return parse(name, EdgeConfig::parseDuration);
        }
    }

    /** The documented keys by name (for tests). */
    static Map<String, Key> keysByName() {
        Map<String, Key> m = new LinkedHashMap<>();
        KEYS.forEach(k -> m.put(k.name(), k));
        return Collections.unmodifiableMap(m);
    }
}
