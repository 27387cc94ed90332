package dev.tokenmeter.edge.async;

import dev.tokenmeter.edge.redis.StoredScript;
import io.lettuce.core.Consumer;
import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.RedisBusyException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.XAutoClaimArgs;
import io.lettuce.core.XGroupCreateArgs;
import io.lettuce.core.XReadArgs;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.lettuce.core.models.stream.ClaimedMessages;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The async jobs in Redis (ADR 0083): the stream {@code ASYNC_STREAM} with its consumer group {@value #GROUP}, one
 * hash per job ({@code {<stream>}:<tenant>:job:<id>}: status, owner, attempts, result; TTL {@code ASYNC_RESULT_TTL}),
 * one counter per tenant of its jobs queued or running ({@code {<stream>}:<tenant>:queued}), and the dead-letter
 * stream. The hashes and counters carry the stream's name as their hash tag, so they live in the stream's slot and
 * one script ({@code async/enqueue.lua}) queues a job in one round trip, on Redis Cluster too (ADR 0090).
 */
public final class JobStore {

    public static final String GROUP = "workers";
    public static final String QUEUED = "queued";
    public static final String RUNNING = "running";

    private final RedisClusterCommands<String, String> redis;
    private final AsyncJobsConfig config;
    private final StoredScript enqueueScript = StoredScript.resource("async/enqueue.lua");

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
        return config.slotPrefix() + ":" + tenantId + ":job:" + jobId;
    }

    String queuedKey(String tenantId) {
        return config.slotPrefix() + ":" + tenantId + ":queued";
    }

    /** Gives a place back (the job ended, or was never queued). */
    public void givePlace(String tenantId) {
        redis.decr(queuedKey(tenantId));
    }

    /** What {@link #enqueue} came to. */
    public enum Enqueued { QUEUED, QUEUE_FULL, DUPLICATE }

    /**
     * Queues the job in one script (one round trip, ADR 0090): unless the tenant's {@code ASYNC_MAX_QUEUED_PER_TENANT}
     * places are all taken (QUEUE_FULL) or the job id is queued already (DUPLICATE) — both write nothing — it takes a
     * place, writes the job's hash (status queued, TTL) and then its stream entry, so a worker that reads the entry
     * always finds the hash and a place is never taken without its job.
     */
    public Enqueued enqueue(AsyncJob job, Instant now) {
        Map<String, String> hash = new LinkedHashMap<>();
        hash.put("status", QUEUED);
        hash.put("user", job.userId());
        hash.put("endpoint", job.endpoint());
        hash.put("model", job.model());
        hash.put("created_ms", Long.toString(now.toEpochMilli()));
        hash.put("attempts", "0");
        Map<String, String> entry = job.fields();
        List<String> args = new ArrayList<>(3 + 2 * (hash.size() + entry.size()));
        args.add(Integer.toString(config.maxQueuedPerTenant()));
        args.add(Long.toString(config.resultTtl().toMillis()));
        args.add(Integer.toString(hash.size()));
        hash.forEach((k, v) -> { args.add(k); args.add(v); });
        entry.forEach((k, v) -> { args.add(k); args.add(v); });
        String[] keys = {queuedKey(job.tenantId()), jobKey(job.tenantId(), job.jobId()), config.stream()};
        String reply = enqueueScript.run(redis, ScriptOutputType.VALUE, keys, args.toArray(String[]::new));
        return switch (reply) {
            case "full" -> Enqueued.QUEUE_FULL;
            case "duplicate" -> Enqueued.DUPLICATE;
            default -> Enqueued.QUEUED; // the entry's id
        };
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
