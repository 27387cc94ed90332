package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.csv.CsvTable;
import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.edge.EdgeConfig;
import dev.tokenmeter.sink.BillingSinkConfig;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Each service's stated memory budget on the local stack (issue 20), and the check of every sample row against it.
 * The stack runs each JVM with {@code -Xmx384m -XX:+UseSerialGC} ({@code Stack}); the budgets, per column of the
 * samples' CSV:
 * <ul>
 *   <li>{@code heap_after_gc_mib_<service>} ≤ 256 MiB for every JVM: two thirds of the 384 MiB heap. A live set above
 *       it leaves a full collection too little room, so the JVM spends its time collecting before it runs out;</li>
 *   <li>{@code rss_mib_<service>}: edge 640 MiB, aggregator 768 MiB, sink 512 MiB — the 384 MiB heap plus what a JVM
 *       holds outside it (metaspace, code cache, thread stacks, direct buffers: ~150–250 MiB measured), and for the
 *       aggregator RocksDB's memtables and block cache on top;</li>
 *   <li>{@code redis_used_bytes} ≤ 256 MiB ({@code used_memory}): the quota engine's keys for the run's users;</li>
 *   <li>{@code pg_connections_<service>} ≤ the service's {@code DATABASE_POOL_SIZE} (the default the stack runs
 *       with, read from the service's config keys: edge 10, sink 4) — a pool that leaks or a second pool shows here.</li>
 * </ul>
 * A missing cell (a probe that failed, or the heap probe's off-minutes) is not a breach.
 */
record MemoryBudget(Map<String, Double> limitByColumn) {

    static final double MIB = 1024 * 1024;

    static MemoryBudget localStack() {
        Map<String, Double> limits = new LinkedHashMap<>();
        for (String service : List.of("edge-service", "aggregator-streams", "billing-sink")) {
            limits.put("heap_after_gc_mib_" + service, 256.0);
        }
        limits.put("rss_mib_edge-service", 640.0);
        limits.put("rss_mib_aggregator-streams", 768.0);
        limits.put("rss_mib_billing-sink", 512.0);
        limits.put("redis_used_bytes", 256 * MIB);
        limits.put("pg_connections_edge-service", (double) poolSize(EdgeConfig.KEYS));
        limits.put("pg_connections_billing-sink", (double) poolSize(BillingSinkConfig.KEYS));
        return new MemoryBudget(Map.copyOf(limits));
    }

    private static int poolSize(List<ConfigKey> keys) {
        return keys.stream().filter(k -> k.name().equals("DATABASE_POOL_SIZE")).findFirst()
                .map(k -> Integer.parseInt(k.defaultValue()))
                .orElseThrow(() -> new IllegalStateException("no DATABASE_POOL_SIZE key"));
    }

    /** Every cell above its limit, one line each (column, sample time, value, limit); empty when within budget. */
    List<String> violations(CsvTable table) {
        List<String> out = new ArrayList<>();
        double[] t = table.numbers(Charts.TIME_COLUMN);
        limitByColumn.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
            if (!table.columns().contains(e.getKey())) {
                return;
            }
            double[] v = table.numbers(e.getKey());
            for (int i = 0; i < v.length; i++) {
                if (!Double.isNaN(v[i]) && v[i] > e.getValue()) {
                    out.add(String.format(Locale.ROOT, "%s = %.6g at %.0f s, budget %.6g", e.getKey(), v[i], t[i], e.getValue()));
                }
            }
        });
        return out;
    }
}
