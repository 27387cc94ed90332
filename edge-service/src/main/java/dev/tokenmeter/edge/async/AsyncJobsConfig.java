package dev.tokenmeter.edge.async;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;

import java.time.Duration;
import java.util.List;

/**
 * The edge's async-job settings ({@link #KEYS}, ADR 0083). Jobs live on the quota engine's Redis ({@code REDIS_URI}):
 * a stream, its consumer group, one hash per job, one queued-jobs counter per tenant.
 */
public record AsyncJobsConfig(String stream, int workers, int maxQueuedPerTenant, Duration resultTtl, int maxAttempts,
                              Duration retryBackoff, Duration claimIdle, String callbackSecret, boolean callbackAllowPrivate) {

    public static final List<ConfigKey> KEYS = List.of(
            new ConfigKey("ASYNC_STREAM", "tm:async:jobs", "Redis Stream of async jobs (consumer group 'workers'); dead letters go to <name>:dead. Every edge of one deployment uses the same name."),
            new ConfigKey("ASYNC_WORKERS", "4", "Async jobs this edge runs at once (its workers read the stream); 0 = this edge only takes jobs, never runs them."),
            new ConfigKey("ASYNC_MAX_QUEUED_PER_TENANT", "100", "Jobs of one tenant queued or running at once; one more is answered 429 with retry-after and its reservation released (ADR 0090)."),
            new ConfigKey("ASYNC_RESULT_TTL", "24h", "How long a job's status and result stay readable at GET /v1/async/jobs/{id}."),
            new ConfigKey("ASYNC_MAX_ATTEMPTS", "4", "Upstream attempts of a job whose upstream answers 429/5xx or cannot be reached; after the last, the job is dead (dead-letter stream, reservation released)."),
            new ConfigKey("ASYNC_RETRY_BACKOFF", "500ms", "Wait before a job's second attempt, doubled for each further one."),
            new ConfigKey("ASYNC_CLAIM_IDLE", "60s", "A job pending this long on a worker that stopped (killed) is claimed by another (XAUTOCLAIM); keep it above UPSTREAM_REQUEST_TIMEOUT times ASYNC_MAX_ATTEMPTS plus the backoffs."),
            ConfigKey.secret("ASYNC_CALLBACK_SECRET", "", "Master secret of async-job callbacks: each API key signs with its own secret derived from it (GET /v1/async/callback-secret). Empty = callbacks off (x-tokenmeter-callback-url is refused with 400). Never logged."),
            new ConfigKey("ASYNC_CALLBACK_ALLOW_PRIVATE", "false", "true = callbacks may go to loopback, private and link-local addresses (tests, a private deployment); false = such a callback is not sent."));

    public AsyncJobsConfig {
        slotPrefix(stream); // fails on a name whose slot the job keys could not share
    }

    /** Reads the {@link #KEYS} (which {@code r} must list). */
    public static AsyncJobsConfig read(EnvReader r) {
        try {
            slotPrefix(r.string("ASYNC_STREAM"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("ASYNC_STREAM: " + e.getMessage());
        }
        return new AsyncJobsConfig(
                r.string("ASYNC_STREAM"),
                r.integer("ASYNC_WORKERS", 0, 1000),
                r.integer("ASYNC_MAX_QUEUED_PER_TENANT", 1, 10_000_000),
                r.duration("ASYNC_RESULT_TTL", Duration.ofSeconds(1)),
                r.integer("ASYNC_MAX_ATTEMPTS", 1, 100),
                r.duration("ASYNC_RETRY_BACKOFF"),
                r.duration("ASYNC_CLAIM_IDLE", Duration.ofMillis(100)),
                r.string("ASYNC_CALLBACK_SECRET"),
                Boolean.parseBoolean(r.oneOf("ASYNC_CALLBACK_ALLOW_PRIVATE", "true", "false")));
    }

    /** Callbacks are on when there is a secret to sign them with. */
    public boolean callbacks() {
        return !callbackSecret.isEmpty();
    }

    @Override
    public String toString() {
        return "AsyncJobsConfig[stream=" + stream + ", workers=" + workers + ", maxQueuedPerTenant=" + maxQueuedPerTenant
                + ", resultTtl=" + resultTtl + ", maxAttempts=" + maxAttempts + ", retryBackoff=" + retryBackoff
                + ", claimIdle=" + claimIdle + ", callbackSecret=" + (callbackSecret.isEmpty() ? "<unset>" : "<redacted>")
                + ", callbackAllowPrivate=" + callbackAllowPrivate + "]";
    }

    /** The prefix of the job hashes and tenant counters: in the stream's hash slot (ADR 0090). */
    public String slotPrefix() {
        return slotPrefix(stream);
    }

    /**
     * A prefix whose keys hash to {@code stream}'s Redis Cluster slot: the name itself when it carries a hash tag (the
     * first {@code {...}}, non-empty, decides), else the name as the hash tag ({@code {name}}).
     */
    static String slotPrefix(String stream) {
        int open = stream.indexOf('{');
        if (open >= 0) {
            int close = stream.indexOf('}', open + 1);
            if (close > open + 1) {
                return stream;
            }
            throw new IllegalArgumentException("a stream name with '{' must carry a non-empty hash tag {...}");
        }
        if (stream.indexOf('}') >= 0) {
            throw new IllegalArgumentException("a stream name with '}' must carry a non-empty hash tag {...}");
        }
        return "{" + stream + "}";
    }

    /** The dead-letter stream. */
    public String deadLetters() {
        return stream + ":dead";
    }

    /** The wait before attempt {@code attempt} (2 = the first retry): the backoff, doubled for each retry after it. */
    public Duration backoffBefore(int attempt) {
        return retryBackoff.multipliedBy(1L << Math.min(20, Math.max(0, attempt - 2)));
    }
}
