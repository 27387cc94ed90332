package dev.tokenmeter.edge.quota;

import dev.tokenmeter.edge.account.AccountDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Issue 17 benchmark (a program, not a test): the reserve rate with a tenant budget (ADR 0081: the tenant's script in
 * its own slot, then the user's) against the rate without one, in the same run, against a redis-server started here.
 * Each round measures both phases back to back (order alternating) at each concurrency level, the calls spread over
 * {@code users} users of one tenant (one hot tenant: the worst case for the tenant's slot). Target: with ÷ without
 * ≥ 50 %. Prints a Markdown table for BENCHMARKS.md and the median of the per-round ratios per level.
 *
 * <p>Run: {@code bin/benchmark edge-service dev.tokenmeter.edge.quota.TenantBudgetBenchmark [rounds] [secondsPerPhase]
 * [users] [concurrency,...]} (defaults 5, 5, 50, 1,8,32; {@code quota.bench.redis-server} names the binary).
 */
public final class TenantBudgetBenchmark {

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        long seconds = args.length > 1 ? Long.parseLong(args[1]) : 5;
        int users = args.length > 2 ? Integer.parseInt(args[2]) : 50;
        int[] levels = Arrays.stream((args.length > 3 ? args[3] : "1,8,32").split(",")).mapToInt(v -> Integer.parseInt(v.trim())).toArray();
        String serverBin = System.getProperty("quota.bench.redis-server", "redis-server");
        int port = QuotaBenchmark.freePort();
        Path dir = Files.createTempDirectory("tenant-bench");
        Process server = new ProcessBuilder(serverBin, "--port", Integer.toString(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", dir.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("redis.log").toFile()).start();
        try {
            QuotaBenchmark.waitForPort(port);
            run(port, rounds, seconds, users, levels);
        } finally {
            server.destroy();
            server.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private static void run(int port, int rounds, long seconds, int users, int[] levels) throws Exception {
        AccountDirectory directory = BenchmarkAccounts.anyUserUnlimited(); // every user of tenant "t"
        try (QuotaRedis redis = QuotaRedis.connect("redis://127.0.0.1:" + port, Duration.ofSeconds(2));
             QuotaEngine engine = QuotaEngine.builder().redis(redis.connection()).accountDirectory(directory)
                     .usageBaseline(BenchmarkAccounts.noUsage()).config(QuotaConfig.defaults().withBackgroundOff()).build().warmUp()) {
            // JIT warm-up of both paths (and the users' and the tenant's counters built once).
            phase(engine, 8, 2 * seconds, users, false);
            phase(engine, 8, 2 * seconds, users, true);
            StringBuilder table = new StringBuilder("| round | concurrency | first | without: reserve/s | p50 ms | p99 ms"
                    + " | with tenant budget: reserve/s | p50 ms | p99 ms | rate ratio |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
            List<List<Double>> ratios = new ArrayList<>();
            for (int ignored : levels) ratios.add(new ArrayList<>());
            for (int round = 1; round <= rounds; round++) {
                for (int li = 0; li < levels.length; li++) {
                    int c = levels[li];
                    boolean withFirst = round % 2 == 0;
                    phase(engine, c, 1, users, withFirst); // settle this level's threads
                    QuotaBenchmark.Result first = phase(engine, c, seconds, users, withFirst);
                    QuotaBenchmark.Result second = phase(engine, c, seconds, users, !withFirst);
                    QuotaBenchmark.Result with = withFirst ? first : second;
                    QuotaBenchmark.Result without = withFirst ? second : first;
                    double ratio = with.opsPerSec() / without.opsPerSec();
                    ratios.get(li).add(ratio);
                    table.append(String.format("| %d | %d | %s | %,.0f | %.3f | %.3f | %,.0f | %.3f | %.3f | %.0f%% |%n", round, c,
                            withFirst ? "with" : "without", without.opsPerSec(), without.p50Ms(), without.p99Ms(),
                            with.opsPerSec(), with.p50Ms(), with.p99Ms(), 100 * ratio));
                    System.err.println("done round " + round + " concurrency " + c);
                }
            }
            System.out.println(rounds + " rounds, " + seconds + " s per phase, " + users + " users of one tenant");
            System.out.println(table);
            for (int li = 0; li < levels.length; li++) {
                List<Double> r = new ArrayList<>(ratios.get(li));
                r.sort(null);
                System.out.printf("concurrency %d: median rate ratio (with ÷ without) %.0f%% (target >= 50%%)%n",
                        levels[li], 100 * r.get(r.size() / 2));
            }
        }
    }

    /** c threads reserving for `seconds`, call n by user n % users; every call must be a Redis admit. */
    private static QuotaBenchmark.Result phase(QuotaEngine engine, int c, long seconds, int users, boolean tenantBudget) throws Exception {
        long budget = tenantBudget ? QuotaLimits.MAX_CREDIT_NANO_USD : ReserveRequest.NO_TENANT_BUDGET;
        List<ReserveRequest> requests = new ArrayList<>();
        for (int u = 0; u < users; u++) {
            requests.add(new ReserveRequest("bu" + u, "k-bu" + u, "gpt-4o-mini", 1000, 10, ReserveRequest.NO_KEY_BUDGET, budget));
        }
        return QuotaBenchmark.timed(c, seconds, n -> {
            Decision d = engine.reserve(requests.get((int) (n % users)));
            if (d.mode() != DecisionMode.REDIS || !d.admitted()) throw new IllegalStateException("not a Redis admit: " + d);
        });
    }
}
