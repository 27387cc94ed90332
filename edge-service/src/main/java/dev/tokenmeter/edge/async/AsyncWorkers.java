package dev.tokenmeter.edge.async;

import dev.tokenmeter.edge.proxy.AsyncJobJson;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The edge's async workers (ADR 0083): one poller thread reads the stream for its consumer ({@code XREADGROUP}, on a
 * connection of its own since it blocks) as many entries as it has free workers ({@code ASYNC_WORKERS}), and every
 * {@code ASYNC_CLAIM_IDLE / 2} claims the entries another consumer left pending that long ({@code XAUTOCLAIM}: a
 * killed edge's jobs); each job runs on a virtual thread through the {@link JobRunner}, then is recorded and
 * acknowledged ({@link JobStore#finish}).
 */
public final class AsyncWorkers implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(AsyncWorkers.class);
    private static final Duration READ_BLOCK = Duration.ofMillis(500);

    private final JobStore store;
    private final RedisClusterCommands<String, String> blocking;
    private final JobRunner runner;
    private final String consumer;
    private final Clock clock;
    private final AsyncMetrics metrics;
    /** Null when callbacks are off. */
    private final JobCallbacks callbacks;
    private final int workers;
    private final Semaphore free;
    private volatile boolean running = true;
    private final Thread poller;

    public AsyncWorkers(JobStore store, RedisClusterCommands<String, String> blocking, JobRunner runner, String consumer, Clock clock,
                        AsyncMetrics metrics, JobCallbacks callbacks) {
        this.metrics = Objects.requireNonNull(metrics, "metrics");
        this.callbacks = callbacks;
        this.store = Objects.requireNonNull(store, "store");
        this.blocking = Objects.requireNonNull(blocking, "blocking");
        this.runner = Objects.requireNonNull(runner, "runner");
        this.consumer = Objects.requireNonNull(consumer, "consumer");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.workers = store.config().workers();
        this.free = new Semaphore(workers);
        store.ensureGroup();
        this.poller = Thread.ofPlatform().daemon().name("async-poller").unstarted(this::poll);
    }

    public AsyncWorkers start() {
        poller.start();
        return this;
    }

    private void poll() {
        long claimEveryMs = Math.max(50, store.config().claimIdle().toMillis() / 2);
        long nextClaim = 0;
        while (running) {
            try {
                int n = free.availablePermits();
                if (n == 0) {
                    free.acquire();
                    free.release();
                    continue;
                }
                if (System.currentTimeMillis() >= nextClaim) {
                    nextClaim = System.currentTimeMillis() + claimEveryMs;
                    List<StreamMessage<String, String>> claimed = store.claim(consumer, n);
                    if (!claimed.isEmpty()) {
                        LOG.info("claimed {} async job(s) left pending by a stopped worker", claimed.size());
                    }
                    dispatch(claimed);
                    continue;
                }
                dispatch(JobStore.read(blocking, store.config(), consumer, n, READ_BLOCK));
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                if (!running) {
                    return;
                }
                LOG.warn("async poller: {}", e.toString());
                sleepQuietly(Duration.ofSeconds(1));
            }
        }
    }

    private void dispatch(List<StreamMessage<String, String>> entries) throws InterruptedException {
        for (StreamMessage<String, String> entry : entries) {
            free.acquire();
            Thread.ofVirtual().name("async-job").start(() -> {
                try {
                    process(entry.getId(), entry.getBody());
                } finally {
                    free.release();
                }
            });
        }
    }

    /** One entry: skipped (acknowledged) when its job already ended; else run, recorded, acknowledged. */
    private void process(String entryId, Map<String, String> fields) {
        AsyncJob job;
        try {
            job = AsyncJob.of(fields);
        } catch (RuntimeException e) {
            LOG.error("async entry {} is not a job ({}): acknowledged and dropped", entryId, e.toString());
            store.ack(entryId);
            return;
        }
        try {
            Map<String, String> state = store.state(job.tenantId(), job.jobId());
            String status = state.get("status");
            if (status != null && !status.equals(JobStore.QUEUED) && !status.equals(JobStore.RUNNING)) {
                // Ended on a worker that stopped before acknowledging it: it is answered and billed already.
                store.ack(entryId);
                return;
            }
            int attemptsBefore = Integer.parseInt(state.getOrDefault("attempts", "0"));
            JobResult result = runner.run(job, attemptsBefore, () -> store.attemptStarted(job));
            store.finish(job, entryId, result, clock.instant());
            metrics.ended(result.status());
            if (job.callbackUrl() != null && callbacks != null) {
                // After the result is recorded: the callback carries what GET answers, and never holds the job back.
                String outcome = callbacks.deliver(job, AsyncJobJson.of(job.jobId(), store.state(job.tenantId(), job.jobId())));
                store.callbackOutcome(job, outcome);
            }
        } catch (RuntimeException e) {
            // Left pending: claimed again after ASYNC_CLAIM_IDLE (its event id stays the job id: billed once).
            LOG.error("async job {} of user {} could not be run or recorded: {}", job.jobId(), job.userId(), e.toString());
        }
    }

    private static void sleepQuietly(Duration d) {
        try {
            Thread.sleep(d);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Stops reading; waits up to {@code timeout} for the jobs under way (the rest stay pending for another edge). */
    public void close(Duration timeout) {
        running = false;
        poller.interrupt();
        try {
            poller.join(READ_BLOCK.toMillis() * 2 + 1000);
            if (free.tryAcquire(workers, timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                free.release(workers);
            } else {
                LOG.warn("async jobs still running at shutdown: they stay pending and another edge claims them");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        close(Duration.ofSeconds(30));
    }
}
