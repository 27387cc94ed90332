package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.csv.CsvTable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Every {@code interval} (10 s in the load program) takes one sample — {@code time} (ISO-8601 UTC),
 * {@code elapsed_s} since {@link #start()}, then each column the named sources give — and appends it as a row of
 * {@link CsvTable}'s file. The columns are fixed up front so the header is written once and every row has the same
 * fields; a source that fails (an engine stopped by a fault) leaves its columns empty for that row and is logged, so
 * a gap shows in the chart instead of the sampler stopping.
 *
 * <pre>{@code
 * try (Sampler s = Sampler.builder(Path.of("load.csv"), Duration.ofSeconds(10))
 *         .source(List.of("redis_used_bytes"), row -> row.put("redis_used_bytes", Probes.redisMemory(r).usedBytes()))
 *         .build()) {
 *     s.start();
 *     ...
 * }
 * }</pre>
 */
public final class Sampler implements AutoCloseable {

    /** Fills its columns of one row. */
    @FunctionalInterface
    public interface Source {
        void sample(Map<String, Object> row) throws Exception;
    }

    private record Named(List<String> columns, Source source) {
    }

    private static final Logger log = LoggerFactory.getLogger(Sampler.class);

    private final Path csv;
    private final Duration interval;
    private final Clock clock;
    private final List<Named> sources;
    private final List<String> columns;
    private final AtomicLong rows = new AtomicLong();
    // not the monitor of this: close() holds that while it waits for the timer's last row
    private final Object fileLock = new Object();
    private ScheduledExecutorService timer;
    private long startNanos;

    private Sampler(Builder b) {
        this.csv = b.csv;
        this.interval = b.interval;
        this.clock = b.clock;
        this.sources = List.copyOf(b.sources);
        List<String> cols = new ArrayList<>(List.of("time", "elapsed_s"));
        for (Named n : sources) {
            for (String c : n.columns()) {
                if (cols.contains(c)) {
                    throw new IllegalArgumentException("column " + c + " named twice");
                }
                cols.add(c);
            }
        }
        this.columns = List.copyOf(cols);
    }

    public static Builder builder(Path csv, Duration interval) {
        return new Builder(csv, interval);
    }

    public List<String> columns() {
        return columns;
    }

    /** How many rows this sampler has written. */
    public long rows() {
        return rows.get();
    }

    /** Takes the first sample now, then one every interval. */
    public synchronized void start() {
        if (timer != null) {
            throw new IllegalStateException("already started");
        }
        startNanos = System.nanoTime();
        timer = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().daemon().name("load-sampler").unstarted(r));
        // fixed delay, not rate: a slow probe (a stalled engine) must not pile samples up behind it
        timer.scheduleWithFixedDelay(this::sampleOnce, 0, interval.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** One row now, on the caller's thread (also what the timer runs). */
    public void sampleOnce() {
        Map<String, Object> row = new LinkedHashMap<>();
        Instant now = clock.instant();
        row.put("time", now.toString());
        row.put("elapsed_s", String.format(java.util.Locale.ROOT, "%.3f", (System.nanoTime() - startNanos) / 1e9));
        for (Named n : sources) {
            Map<String, Object> part = new LinkedHashMap<>();
            try {
                n.source().sample(part);
                for (String c : n.columns()) {
                    row.put(c, part.get(c));
                }
            } catch (Exception e) {
                log.warn("sample source {} failed, its columns stay empty in this row: {}", n.columns(), e.toString());
            }
        }
        synchronized (fileLock) {
            CsvTable.append(csv, columns, row);
            rows.incrementAndGet();
        }
    }

    @Override
    public synchronized void close() {
        if (timer != null) {
            timer.shutdownNow();
            try {
                if (!timer.awaitTermination(30, TimeUnit.SECONDS)) {
                    log.warn("sampler still busy 30 s after close");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    public static final class Builder {
        private final Path csv;
        private final Duration interval;
        private Clock clock = Clock.systemUTC();
        private final List<Named> sources = new ArrayList<>();

        private Builder(Path csv, Duration interval) {
            this.csv = Objects.requireNonNull(csv, "csv");
            if (interval.isNegative() || interval.isZero()) {
                throw new IllegalArgumentException("interval must be > 0, was " + interval);
            }
            this.interval = interval;
        }

        /** A source and the columns it fills (in this order in the file). */
        public Builder source(List<String> columns, Source source) {
            sources.add(new Named(List.copyOf(columns), Objects.requireNonNull(source)));
            return this;
        }

        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock);
            return this;
        }

        public Sampler build() {
            return new Sampler(this);
        }
    }
}
