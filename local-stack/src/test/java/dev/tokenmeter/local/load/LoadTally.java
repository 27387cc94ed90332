package dev.tokenmeter.local.load;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * What the load saw, per sampling interval ({@link #takeInterval}) and for the whole run ({@link #total}): answers
 * by status class and each answer's latency. Thread-safe; the whole run's latencies are all kept (a long each: an
 * hour at 100 req/s is 2.9 MB).
 */
final class LoadTally {

    /** How an answer is counted: 2xx and 429 are what the demo's users are designed to get. */
    enum StatusClass {
        S2XX, S429, S503, OTHER, TRANSPORT_ERROR;

        static StatusClass of(int status) {
            if (status < 0) {
                return TRANSPORT_ERROR;
            }
            if (status >= 200 && status < 300) {
                return S2XX;
            }
            return status == 429 ? S429 : status == 503 ? S503 : OTHER;
        }

        String column() {
            return switch (this) {
                case S2XX -> "status_2xx";
                case S429 -> "status_429";
                case S503 -> "status_503";
                case OTHER -> "status_other";
                case TRANSPORT_ERROR -> "transport_errors";
            };
        }
    }

    /** Counts by class and latency percentiles (ms, NaN without answers) of some answers. */
    record Snapshot(Map<StatusClass, Long> counts, long answers, double p50Ms, double p90Ms, double p99Ms, double maxMs) {
        long count(StatusClass c) {
            return counts.getOrDefault(c, 0L);
        }
    }

    private final Map<StatusClass, Long> intervalCounts = new EnumMap<>(StatusClass.class);
    private final Map<StatusClass, Long> totalCounts = new EnumMap<>(StatusClass.class);
    private long[] interval = new long[1024];
    private int intervalSize;
    private long[] all = new long[1024];
    private int allSize;

    synchronized void record(int status, long latencyNanos) {
        StatusClass c = StatusClass.of(status);
        intervalCounts.merge(c, 1L, Long::sum);
        totalCounts.merge(c, 1L, Long::sum);
        if (intervalSize == interval.length) {
            interval = Arrays.copyOf(interval, intervalSize * 2);
        }
        interval[intervalSize++] = latencyNanos;
        if (allSize == all.length) {
            all = Arrays.copyOf(all, allSize * 2);
        }
        all[allSize++] = latencyNanos;
    }

    /** The answers since the previous call, and starts a new interval. */
    synchronized Snapshot takeInterval() {
        Snapshot s = snapshot(intervalCounts, Arrays.copyOf(interval, intervalSize));
        intervalCounts.clear();
        intervalSize = 0;
        return s;
    }

    synchronized Snapshot total() {
        return snapshot(totalCounts, Arrays.copyOf(all, allSize));
    }

    private static Snapshot snapshot(Map<StatusClass, Long> counts, long[] latencies) {
        Arrays.sort(latencies);
        Map<StatusClass, Long> copy = new EnumMap<>(StatusClass.class);
        copy.putAll(counts);
        return new Snapshot(copy, latencies.length,
                percentileMs(latencies, 50), percentileMs(latencies, 90), percentileMs(latencies, 99),
                latencies.length == 0 ? Double.NaN : latencies[latencies.length - 1] / 1e6);
    }

    /** Nearest-rank percentile of sorted nanoseconds, in ms: the smallest value with at least p % at or below it. */
    static double percentileMs(long[] sortedNanos, double p) {
        if (sortedNanos.length == 0) {
            return Double.NaN;
        }
        int rank = (int) Math.ceil(p / 100 * sortedNanos.length);
        return sortedNanos[Math.max(0, Math.min(sortedNanos.length, rank) - 1)] / 1e6;
    }

    /** The CSV columns {@link #fill} writes. */
    static List<String> columns() {
        List<String> cols = new ArrayList<>(List.of("answers_per_s", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms"));
        for (StatusClass c : StatusClass.values()) {
            cols.add(c.column());
        }
        return cols;
    }

    /** One interval's row cells; {@code seconds} is the interval's length. */
    static void fill(Map<String, Object> row, Snapshot s, double seconds) {
        row.put("answers_per_s", String.format(java.util.Locale.ROOT, "%.2f", s.answers() / seconds));
        if (s.answers() > 0) {
            row.put("latency_p50_ms", String.format(java.util.Locale.ROOT, "%.2f", s.p50Ms()));
            row.put("latency_p90_ms", String.format(java.util.Locale.ROOT, "%.2f", s.p90Ms()));
            row.put("latency_p99_ms", String.format(java.util.Locale.ROOT, "%.2f", s.p99Ms()));
        }
        for (StatusClass c : StatusClass.values()) {
            row.put(c.column(), s.count(c));
        }
    }
}
