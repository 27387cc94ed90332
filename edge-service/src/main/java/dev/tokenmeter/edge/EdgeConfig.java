package dev.tokenmeter.edge;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.config.Redact;
import dev.tokenmeter.edge.async.AsyncJobsConfig;
import dev.tokenmeter.edge.responsecache.ResponseCacheConfig;

import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;

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
        Duration upstreamDrainTimeout,
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
        KafkaClientSettings kafka,
        String topicPrefix,
        String personalKeyMasterKeyId,
        String personalKeyMasterKey,
        String edgeInstance,
        java.nio.file.Path spoolDir,
        long spoolMaxBytes,
        Duration spoolFsyncInterval,
        Duration spoolSendTimeout,
        String adminHost,
        int adminPort,
        String adminToken,
        Duration batchMaxEventAge,
        int metricsPort,
        int maxCallsInFlight,
        ResponseCacheConfig responseCache,
        AsyncJobsConfig asyncJobs,
        String aggregatorApplicationId,
        long maxBatchFileBytes,
        int maxBatchLines,
        Duration batchPollInterval) {

    /** The shortest ADMIN_TOKEN accepted: a guessable token would hand out every user's keys and credit. */
    public static final int MIN_ADMIN_TOKEN_CHARS = 32;

    public static final List<ConfigKey> KEYS = ConfigKey.join(List.of(
            new ConfigKey("EDGE_HOST", "127.0.0.1", "Interface the public listener binds to (OpenAI-compatible /v1, metering API)."),
            new ConfigKey("EDGE_PORT", "8080", "Port of the public listener (0 = a free port)."),
            new ConfigKey("UPSTREAM_BASE_URL", "https://api.openai.com", "OpenAI-compatible upstream; the /v1/... path is appended (a trailing /v1 is accepted)."),
            ConfigKey.secret("OPENAI_API_KEY", "", "The service's own OpenAI key, used for SERVICE_CREDIT calls. Never logged."),
            new ConfigKey("UPSTREAM_CONNECT_TIMEOUT", "5s", "Connect timeout to the upstream (e.g. 500ms, 5s)."),
            new ConfigKey("UPSTREAM_REQUEST_TIMEOUT", "120s", "Longest wait for the upstream's response headers (past it the caller gets 504) or, in a streamed answer, for its next bytes."),
            new ConfigKey("UPSTREAM_DRAIN_TIMEOUT", "30s", "After a caller leaves a stream, how long the edge goes on reading the upstream for its usage chunk (billed as REPORTED); past it the call is billed ESTIMATED, never below the prompt estimate plus the streamed tokens. 0 = do not drain."),
            new ConfigKey("MAX_BODY_BYTES", "4194304", "Largest accepted request body in bytes; larger gets 413."),
            new ConfigKey("DEFAULT_MAX_COMPLETION_TOKENS", "1024", "Completion tokens assumed for the quota estimate when the request sets no max_tokens."),
            new ConfigKey("DEFAULT_PRICE_MODEL", "", "Price a model without a price row like this model; empty = reject unknown models with 400."),
            new ConfigKey("PRICE_REFRESH_INTERVAL", "30s", "How often the price book reloads model_price."),
            new ConfigKey("API_KEY_CACHE_TTL", "5s", "How long a looked-up service API key (or its absence/revocation) is cached."),
            new ConfigKey("DATABASE_URL", "jdbc:postgresql://127.0.0.1:5432/tokenmeter", "JDBC URL of the Postgres database with the Flyway schema."),
            new ConfigKey("DATABASE_USER", "tokenmeter_edge_svc", "Postgres login of the edge (member of tokenmeter_edge; the init step creates it), never the schema owner."),
            ConfigKey.secret("DATABASE_PASSWORD", "", "Postgres password. Never logged."),
            new ConfigKey("DATABASE_POOL_SIZE", "10", "Connections in the pool."),
            new ConfigKey("REDIS_URI", "redis://127.0.0.1:6379", "Redis for the quota engine."),
            new ConfigKey("TOPIC_PREFIX", "", "Prefix of every topic name (see usage-events Topics)."),
            new ConfigKey("PERSONAL_KEY_MASTER_KEY_ID", "k1", "Id of the master key that seals users' own provider keys."),
            ConfigKey.secret("PERSONAL_KEY_MASTER_KEY", "", "Base64 of 32 random bytes (AES-256) sealing users' own provider keys; empty disables personal keys. Never logged."),
            new ConfigKey("EDGE_INSTANCE", "edge-1", "Name of this edge in usage events."),
            new ConfigKey("SPOOL_DIR", "./spool", "Directory of the durable local event spool (used while Kafka is unreachable); must survive restarts."),
            new ConfigKey("SPOOL_MAX_BYTES", "1073741824", "Largest spool size in bytes; past it calls are refused with 503 instead of losing events."),
            new ConfigKey("SPOOL_FSYNC_INTERVAL", "2ms", "Group-commit interval of the spool: spooled events wait at most this long (plus the fsync) for durability."),
            new ConfigKey("SPOOL_SEND_TIMEOUT", "2s", "An event Kafka has not acknowledged within this time switches the edge to spooling."),
            new ConfigKey("ADMIN_HOST", "127.0.0.1", "Interface of the admin listener (admin API, admin usage query, /metrics); keep it private."),
            new ConfigKey("ADMIN_PORT", "8081", "Port of the admin listener, never the public EDGE_PORT (0 = a free port)."),
            new ConfigKey("MAX_CALLS_IN_FLIGHT", "1000", "Proxied calls this edge serves at once (streams included); one more is answered at once with 503 server_overloaded and retry-after: 1, before its key is checked (no event: nothing ran)."),
            new ConfigKey("METRICS_PORT", "-1", "Port of a /metrics-only listener on all interfaces, for Prometheus (0 = a free port, -1 = off; /metrics is on the admin listener anyway)."),
            ConfigKey.secret("ADMIN_TOKEN", "", "Bearer token of the admin API (/admin/... on the admin listener), at least " + MIN_ADMIN_TOKEN_CHARS + " characters; empty disables the admin API. Never logged."),
            new ConfigKey("AGGREGATOR_APPLICATION_ID", "tokenmeter-aggregator", "The aggregator's APPLICATION_ID (its consumer group): the dashboard shows its lag on usage-events (the edge's Kafka principal may DESCRIBE that group; ADR 0082). Empty = not shown."),
            new ConfigKey("BATCH_MAX_EVENT_AGE", "6d", "Oldest occurred_at batch ingest accepts (400 past it); keep it below the aggregator's DEDUP_RETENTION, so a resent batch is always deduplicated."),
            new ConfigKey("MAX_BATCH_FILE_BYTES", "33554432", "Largest Batch API input file (POST /v1/files, purpose=batch) in bytes (ADR 0087); larger gets 400 file_too_large with nothing upstream. The edge reads an upload whole (about 3x its size in heap while checked, at most 4 at once), so this bounds its memory; OpenAI takes up to 200 MB: split bigger files."),
            new ConfigKey("MAX_BATCH_LINES", "50000", "Most requests in one Batch API input file (OpenAI's limit, 1..50000); more gets 400 too_many_requests_in_file."),
            new ConfigKey("BATCH_POLL_INTERVAL", "60s", "How often this edge reads the open Batch API batches upstream and bills those that ended (ADR 0087), so a caller who never polls is billed; 0 = never (billed only when read).")),
            KafkaClientSettings.KEYS, ResponseCacheConfig.KEYS, AsyncJobsConfig.KEYS);

    public EdgeConfig {
        upstreamBaseUrl = normalizeUpstream(upstreamBaseUrl);
    }

    public static EdgeConfig fromEnv() {
        return fromEnv(System.getenv());
    }

    /** Reads every key from {@code env}; a blank or absent value means the key's default. */
    public static EdgeConfig fromEnv(Map<String, String> env) {
        EnvReader r = new EnvReader(env, KEYS);
        return new EdgeConfig(
                r.string("EDGE_HOST"),
                r.integer("EDGE_PORT", 0, 65535),
                r.parse("UPSTREAM_BASE_URL", "an http(s) URL like https://api.openai.com", EdgeConfig::httpUri),
                r.string("OPENAI_API_KEY"),
                // 0 would mean "wait forever" to the HTTP client: a stuck upstream would hold calls and their credit.
                r.duration("UPSTREAM_CONNECT_TIMEOUT", Duration.ofMillis(1)),
                r.duration("UPSTREAM_REQUEST_TIMEOUT", Duration.ofMillis(1)),
                r.duration("UPSTREAM_DRAIN_TIMEOUT"),
                r.longValue("MAX_BODY_BYTES", 1, 1L << 30),
                r.longValue("DEFAULT_MAX_COMPLETION_TOKENS", 1, 10_000_000),
                r.string("DEFAULT_PRICE_MODEL"),
                r.duration("PRICE_REFRESH_INTERVAL", Duration.ofMillis(1)),
                r.duration("API_KEY_CACHE_TTL"),
                r.parse("DATABASE_URL", "a JDBC URL starting with jdbc:postgresql:", v -> {
                    if (!v.startsWith("jdbc:postgresql:")) {
                        throw new IllegalArgumentException("not jdbc:postgresql:");
                    }
                    return v;
                }),
                r.string("DATABASE_USER"),
                r.string("DATABASE_PASSWORD"),
                r.integer("DATABASE_POOL_SIZE", 1, 500),
                r.string("REDIS_URI"),
                KafkaClientSettings.read(r),
                r.string("TOPIC_PREFIX"),
                r.string("PERSONAL_KEY_MASTER_KEY_ID"),
                r.string("PERSONAL_KEY_MASTER_KEY"),
                r.string("EDGE_INSTANCE"),
                r.parse("SPOOL_DIR", "a directory path", java.nio.file.Path::of),
                r.longValue("SPOOL_MAX_BYTES", 1024, Long.MAX_VALUE),
                r.duration("SPOOL_FSYNC_INTERVAL"),
                r.duration("SPOOL_SEND_TIMEOUT", Duration.ofMillis(1)),
                r.string("ADMIN_HOST"),
                r.integer("ADMIN_PORT", 0, 65535),
                r.parse("ADMIN_TOKEN", "empty (admin API off) or at least " + MIN_ADMIN_TOKEN_CHARS + " characters", v -> {
                    if (!v.isEmpty() && v.length() < MIN_ADMIN_TOKEN_CHARS) {
                        throw new IllegalArgumentException("too short");
                    }
                    return v;
                }),
                r.duration("BATCH_MAX_EVENT_AGE", Duration.ofMinutes(1)),
                r.integer("METRICS_PORT", -1, 65535),
                r.integer("MAX_CALLS_IN_FLIGHT", 1, 1_000_000),
                ResponseCacheConfig.read(r),
                AsyncJobsConfig.read(r),
                r.string("AGGREGATOR_APPLICATION_ID"),
                r.longValue("MAX_BATCH_FILE_BYTES", 1, 1L << 30),
                r.integer("MAX_BATCH_LINES", 1, 50_000),
                r.duration("BATCH_POLL_INTERVAL"));
    }

    /** The documented defaults, for tests and {@code --help}. */
    public static EdgeConfig defaults() {
        return fromEnv(Map.of());
    }

    /** Key, default and description of every setting, one per line. */
    public static String describe() {
        return EnvReader.describe(KEYS);
    }

    public String kafkaBootstrapServers() {
        return kafka.bootstrapServers();
    }

    public EdgeConfig withUpstream(String baseUrl, String apiKey) {
        return new EdgeConfig(host, port, URI.create(baseUrl), apiKey, upstreamConnectTimeout, upstreamRequestTimeout, upstreamDrainTimeout,
                maxBodyBytes, defaultMaxCompletionTokens, defaultPriceModel, priceRefreshInterval, apiKeyCacheTtl,
                databaseUrl, databaseUser, databasePassword, databasePoolSize, redisUri, kafka,
                topicPrefix, personalKeyMasterKeyId, personalKeyMasterKey, edgeInstance, spoolDir, spoolMaxBytes,
                spoolFsyncInterval, spoolSendTimeout, adminHost, adminPort, adminToken, batchMaxEventAge, metricsPort,
                maxCallsInFlight, responseCache, asyncJobs, aggregatorApplicationId, maxBatchFileBytes, maxBatchLines,
                batchPollInterval);
    }

    private static URI httpUri(String v) {
        URI uri = URI.create(v.strip());
        if (uri.getScheme() == null || !(uri.getScheme().equals("http") || uri.getScheme().equals("https")) || uri.getHost() == null) {
            throw new IllegalArgumentException("not an http(s) URL");
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
                + ", upstreamDrainTimeout=" + upstreamDrainTimeout
                + ", maxBodyBytes=" + maxBodyBytes + ", defaultMaxCompletionTokens=" + defaultMaxCompletionTokens
                + ", defaultPriceModel=" + defaultPriceModel + ", priceRefreshInterval=" + priceRefreshInterval
                + ", apiKeyCacheTtl=" + apiKeyCacheTtl + ", databaseUrl=" + Redact.url(databaseUrl) + ", databaseUser=" + databaseUser
                + ", databasePoolSize=" + databasePoolSize + ", redisUri=" + Redact.url(redisUri)
                + ", kafka=" + kafka + ", topicPrefix=" + topicPrefix
                + ", personalKeyMasterKeyId=" + personalKeyMasterKeyId
                + ", personalKeyMasterKey=" + (personalKeyMasterKey.isEmpty() ? "<unset>" : "<redacted>")
                + ", edgeInstance=" + edgeInstance + ", spoolDir=" + spoolDir + ", spoolMaxBytes=" + spoolMaxBytes
                + ", spoolFsyncInterval=" + spoolFsyncInterval + ", spoolSendTimeout=" + spoolSendTimeout
                + ", adminHost=" + adminHost + ", adminPort=" + adminPort + ", metricsPort=" + metricsPort
                + ", maxCallsInFlight=" + maxCallsInFlight + ", responseCache=" + responseCache + ", asyncJobs=" + asyncJobs
                + ", adminToken=" + (adminToken.isEmpty() ? "<unset>" : "<redacted>")
                + ", batchMaxEventAge=" + batchMaxEventAge + "]";
    }
}
