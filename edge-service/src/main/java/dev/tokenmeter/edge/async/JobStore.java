package dev.tokenmeter.edge.async;

import io.lettuce.core.Consumer;
import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.RedisBusyException;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.XAutoClaimArgs;
import io.lettuce.core.XGroupCreateArgs;
import io.lettuce.core.XReadArgs;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.lettuce.core.models.stream.ClaimedMessages;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The async jobs in Redis (ADR 0083): the stream {@code ASYNC_STREAM} with its consumer group {@value #GROUP}, one
 * hash per job ({@code <stream>:{<tenant>}:job:<id>}: status, owner, attempts, result; TTL {@code ASYNC_RESULT_TTL}),
 * one counter per tenant of its jobs queued or running ({@code <stream>:{<tenant>}:queued}), and the dead-letter
 * stream. Each command touches one key, so it works on Redis Cluster too.
 */
public final class JobStore {

    public static final String GROUP = "workers";
    public static final String QUEUED = "queued";
    public static final String RUNNING = "running";

    private final RedisClusterCommands<String, String> redis;
    private final AsyncJobsConfig config;

    public JobStore(RedisClusterCommands<String, String> redis, AsyncJobsConfig config) {
        this.redis = Objects.requireNonNull(redis, "redis");
        this.config = Objects.requireNonNull(config, "config");
    }

    public AsyncJobsConfig config() {
        return config;
    }

    /** Creates the stream and its consumer group unless they exist. */
    public void ensureGroup() {
        try {
            redis.xgroupCreate(XReadArgs.StreamOffset.from(config.stream(), "0"), GROUP, XGroupCreateArgs.Builder.mkstream());
        } catch (RedisBusyException e) {
            // BUSYGROUP: another edge made it
        }
    }

    String jobKey(String tenantId, String jobId) {
        return config.stream() + ":{" + tenantId + "}:job:" + jobId;
    }

    private String queuedKey(String tenantId) {
        return config.stream() + ":{" + tenantId + "}:queued";
    }

    /** Takes one of the tenant's {@code ASYNC_MAX_QUEUED_PER_TENANT} places; false (and nothing taken) when all are taken. */
    public boolean takePlace(String tenantId) {
        long n = redis.incr(queuedKey(tenantId));
        if (n > config.maxQueuedPerTenant()) {
            redis.decr(queuedKey(tenantId));
            return false;
        }
        return true;
    }

    /** Gives a place back (the job ended, or was never queued). */
    public void givePlace(String tenantId) {
        redis.decr(queuedKey(tenantId));
    }

    /** The job's hash (status queued), then its stream entry: a worker that reads the entry always finds the hash. */
    public void enqueue(AsyncJob job, Instant now) {
        String key = jobKey(job.tenantId(), job.jobId());
        redis.hset(key, Map.of("status", QUEUED, "user", job.userId(), "endpoint", job.endpoint(), "model", job.model(),
                "created_ms", Long.toString(now.toEpochMilli()), "attempts", "0"));
        redis.pexpire(key, config.resultTtl().toMillis());
        redis.xadd(config.stream(), job.fields());
    }

    /** The job's hash (empty when unknown or expired). */
    public Map<String, String> state(String tenantId, String jobId) {
        return redis.hgetall(jobKey(tenantId, jobId));
    }

    /** Marks an attempt started: status running, attempts + 1. */
    public void attemptStarted(AsyncJob job) {
        String key = jobKey(job.tenantId(), job.jobId());
        redis.hset(key, "status", RUNNING);
        redis.hincrby(key, "attempts", 1);
    }

    /**
     * Records how the job ended and then acknowledges its entry: the result (TTL renewed), the tenant's place back, a
     * dead letter when it is dead. A worker killed before the acknowledgement leaves the entry pending: the one that
     * claims it finds the result and only acknowledges it.
     */
    public void finish(AsyncJob job, String entryId, JobResult result, Instant now) {
        String key = jobKey(job.tenantId(), job.jobId());
        Map<String, String> fields = new HashMap<>();
        fields.put("status", result.status());
        fields.put("http_status", Integer.toString(result.httpStatus()));
        fields.put("content_type", result.contentType());
        fields.put("body", new String(result.body(), StandardCharsets.UTF_8));
        fields.put("finished_ms", Long.toString(now.toEpochMilli()));
        if (result.reason() != null) {
            fields.put("reason", result.reason());
        }
        redis.hset(key, fields);
        redis.pexpire(key, config.resultTtl().toMillis());
        if (JobResult.DEAD.equals(result.status())) {
            redis.xadd(config.deadLetters(), Map.of("id", job.jobId(), "tenant", job.tenantId(), "user", job.userId(),
                    "endpoint", job.endpoint(), "model", job.model(), "reason", result.reason(),
                    "http_status", Integer.toString(result.httpStatus())));
        }
        givePlace(job.tenantId());
        ack(entryId);
    }

    /** What the job's callback came to ({@link JobCallbacks#deliver}), shown by GET as {@code callback}. */
    public void callbackOutcome(AsyncJob job, String outcome) {
        redis.hset(jobKey(job.tenantId(), job.jobId()), "callback", outcome);
    }

    /** Acknowledges the entry and deletes it: the stream holds only jobs queued or running ({@link #depth}). */
    public void ack(String entryId) {
        redis.xack(config.stream(), GROUP, entryId);
        redis.xdel(config.stream(), entryId);
    }

    /** New entries for {@code consumer}, at most {@code count}, waiting up to {@code block} (on a connection of its own). */
    public static List<StreamMessage<String, String>> read(RedisClusterCommands<String, String> blocking, AsyncJobsConfig config,
                                                           String consumer, int count, Duration block) {
        return blocking.xreadgroup(Consumer.from(GROUP, consumer), XReadArgs.Builder.count(count).block(block),
                XReadArgs.StreamOffset.lastConsumed(config.stream()));
    }

    /** Entries pending longer than {@code ASYNC_CLAIM_IDLE} on any consumer, now {@code consumer}'s (XAUTOCLAIM). */
    public List<StreamMessage<String, String>> claim(String consumer, int count) {
        ClaimedMessages<String, String> claimed = redis.xautoclaim(config.stream(),
                XAutoClaimArgs.Builder.xautoclaim(Consumer.from(GROUP, consumer), config.claimIdle(), "0-0").count(count));
        return claimed.getMessages();
    }

    /** Jobs queued or running: every finished entry is deleted (XDEL after XACK), so this is the stream's length. */
    public long depth() {
        return redis.xlen(config.stream());
    }

    /** The age of the oldest job queued or running (its entry id's time), or zero when there is none. */
    public Duration oldestAge(Instant now) {
        List<StreamMessage<String, String>> first = redis.xrange(config.stream(), Range.create("-", "+"), Limit.from(1));
        if (first.isEmpty()) {
            return Duration.ZERO;
        }
        String id = first.get(0).getId();
        long ms = Long.parseLong(id.substring(0, id.indexOf('-')));
        return Duration.ofMillis(Math.max(0, now.toEpochMilli() - ms));
    }
}
