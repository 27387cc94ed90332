package dev.tokenmeter.edge.async;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

import java.time.Clock;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The async jobs' Prometheus metrics (ADR 0083): {@code edge_async_queue_depth} (jobs queued or running, all edges),
 * {@code edge_async_oldest_job_age_seconds} (the oldest of them), read from Redis at each scrape (NaN when Redis
 * does not answer), and {@code edge_async_jobs_total{status}} (jobs this edge ended, by status).
 */
public final class AsyncMetrics {

    private final MeterRegistry registry;
    private final Map<String, Counter> ended = new ConcurrentHashMap<>();

    public AsyncMetrics(MeterRegistry registry, JobStore store, Clock clock) {
        this.registry = registry;
        Gauge.builder("edge_async_queue_depth", store, s -> orNaN(() -> s.depth()))
                .description("Async jobs queued or running (every edge's; the stream's length)").register(registry);
        Gauge.builder("edge_async_oldest_job_age_seconds", store, s -> orNaN(() -> s.oldestAge(clock.instant()).toMillis() / 1000.0))
                .description("Age of the oldest async job queued or running").register(registry);
    }

    /** A job this edge ended with {@code status} (succeeded, failed, dead). */
    public void ended(String status) {
        ended.computeIfAbsent(status, s -> Counter.builder("edge_async_jobs").description("Async jobs this edge ended, by status")
                .tag("status", s).register(registry)).increment();
    }

    private static double orNaN(java.util.function.DoubleSupplier read) {
        try {
            return read.getAsDouble();
        } catch (RuntimeException e) {
            return Double.NaN;
        }
    }
}
