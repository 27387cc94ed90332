package dev.tokenmeter.edge.quota;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.tokenmeter.edge.account.AccountDirectory;
import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.net.DelayProxy;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.Histogram;

/**
 * Issue 21 benchmark (a program, not a test): the FAIL_TO_DATABASE path's reserve rate and latency next to the Redis
 * path's, in the same run and rounds. Two engines over the testkit's embedded Redis and Postgres: one deciding in
 * Redis, one whose Redis is cut (a blackholed proxy; its breaker opened by the first call and kept open) so every
 * decision goes to Postgres. Each thread reserves and then settles (as a call does, so open reservations stay at the
 * calls in flight); the reserve alone is timed, the rate counts reserve+settle pairs. Per round and concurrency, two
 * shapes: one user shared by all threads (its month row is the hot lock) and one user per thread. The two paths
 * alternate which goes first per round. Prints every round and the median of the per-round ratios.
 *
 * <p>Run: {@code bin/benchmark edge-service dev.tokenmeter.edge.quota.QuotaFallbackBenchmark [secondsPerPhase] [rounds]}
 * (default 3 s, 3 rounds; {@code -Dquota.bench.concurrency=1,8} the levels).
 */
public final class QuotaFallbackBenchmark {

    private static final int[] CONCURRENCY = Arrays.stream(System.getProperty("quota.bench.concurrency", "1,8")
            .split(",")).mapToInt(v -> Integer.parseInt(v.trim())).toArray();

    record Result(double pairsPerSec, double reserveP50Ms, double reserveP99Ms) {}

    public static void main(String[] args) throws Exception {
        long seconds = args.length > 0 ? Long.parseLong(args[0]) : 3;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        AccountDirectory directory = BenchmarkAccounts.anyUserUnlimited();
        try (Engines engines = Engines.create(Backend.EMBEDDED)) {
            HikariConfig hc = new HikariConfig();
            hc.setJdbcUrl(engines.postgres().createMigratedDatabase("fallbackbench"));
            hc.setUsername(engines.postgres().user());
            hc.setPassword(engines.postgres().password());
            hc.setMaximumPoolSize(10); // the edge's DATABASE_POOL_SIZE default
            URI redisUri = URI.create(engines.redis().uri());
            QuotaConfig redisConfig = QuotaConfig.defaults().withBackgroundOff();
            QuotaConfig dbConfig = QuotaConfig.fromEnv(Map.of("QUOTA_FAILURE_POLICY", "FAIL_TO_DATABASE",
                    "QUOTA_BREAKER_FAILURES", "1", "QUOTA_BREAKER_OPEN_MS", "86400000")).withBackgroundOff();
            try (HikariDataSource ds = new HikariDataSource(hc);
                 QuotaRedis redis = QuotaRedis.connect(engines.redis().uri(), Duration.ofSeconds(1));
                 DelayProxy proxy = DelayProxy.start(redisUri.getHost(), redisUri.getPort());
                 QuotaRedis cut = QuotaRedis.connect(engines.redis().uri().replace(":" + redisUri.getPort(), ":" + proxy.port()),
                         Duration.ofMillis(200));
                 QuotaEngine inRedis = QuotaEngine.builder().redis(redis.connection()).accountDirectory(directory)
                         .usageBaseline(new JooqUsageBaseline(ds)).dataSource(ds).config(redisConfig).build().warmUp();
                 QuotaEngine inDatabase = QuotaEngine.builder().redis(cut.connection()).accountDirectory(directory)
                         .usageBaseline(new JooqUsageBaseline(ds)).dataSource(ds).config(dbConfig).build()) {
                proxy.blackhole(true);
                Decision first = inDatabase.reserve(new ReserveRequest("warm", "k", "gpt-4o-mini", 1000, 10));
                if (first.mode() != DecisionMode.DATABASE) throw new IllegalStateException("not cut over: " + first);
                // JIT and pools warm before anything is measured.
                phase(inRedis, DecisionMode.REDIS, 8, 2 * seconds, "warm", true);
                phase(inDatabase, DecisionMode.DATABASE, 8, 2 * seconds, "warm", true);

                StringBuilder table = new StringBuilder();
                table.append("| round | concurrency | users | Redis pairs/s | Redis reserve p50 / p99 ms | Postgres pairs/s |"
                        + " Postgres reserve p50 / p99 ms | rate ratio (Postgres ÷ Redis) | p99 ratio |\n");
                table.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
                Map<String, List<double[]>> ratios = new java.util.TreeMap<>();
                for (int round = 1; round <= rounds; round++) {
                    for (int c : CONCURRENCY) {
                        for (boolean shared : new boolean[]{true, false}) {
                            String users = shared ? "one shared" : "one per thread";
                            String tag = "r" + round + "c" + c + (shared ? "s" : "p");
                            Result r;
                            Result d;
                            if (round % 2 == 1) {
                                r = phase(inRedis, DecisionMode.REDIS, c, seconds, tag, shared);
                                d = phase(inDatabase, DecisionMode.DATABASE, c, seconds, tag, shared);
                            } else {
                                d = phase(inDatabase, DecisionMode.DATABASE, c, seconds, tag, shared);
                                r = phase(inRedis, DecisionMode.REDIS, c, seconds, tag, shared);
                            }
                            double rate = d.pairsPerSec() / r.pairsPerSec();
                            double p99 = d.reserveP99Ms() / r.reserveP99Ms();
                            ratios.computeIfAbsent("| " + c + " | " + users + " |", k -> new ArrayList<>()).add(new double[]{rate, p99});
                            table.append(String.format("| %d | %d | %s | %,.0f | %.3f / %.3f | %,.0f | %.3f / %.3f | %.3f | %.1fx |%n",
                                    round, c, users, r.pairsPerSec(), r.reserveP50Ms(), r.reserveP99Ms(), d.pairsPerSec(),
                                    d.reserveP50Ms(), d.reserveP99Ms(), rate, p99));
                            System.err.println("done round " + round + " concurrency " + c + " " + users);
                        }
                    }
                }
                System.out.println(seconds + " s per phase, " + rounds + " rounds, Postgres pool 10, Redis timeout 1 s");
                System.out.println(table);
                System.out.println("| concurrency | users | median rate ratio (Postgres ÷ Redis) | median p99 ratio |");
                System.out.println("|---:|---|---:|---:|");
                ratios.forEach((k, v) -> System.out.printf("%s %.3f | %.1fx |%n", k,
                        median(v.stream().mapToDouble(x -> x[0]).toArray()), median(v.stream().mapToDouble(x -> x[1]).toArray())));
            }
        }
    }

    /** {@code c} threads, each reserving then settling for {@code seconds}; the reserve alone is timed. */
    private static Result phase(QuotaEngine engine, DecisionMode expected, int c, long seconds, String tag, boolean shared)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        AtomicLong pairs = new AtomicLong();
        List<Histogram> hs = new ArrayList<>();
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(c)) {
            List<Future<Histogram>> fs = new ArrayList<>();
            for (int i = 0; i < c; i++) {
                String user = "bench-" + expected + "-" + tag + (shared ? "" : "-" + i);
                fs.add(pool.submit(() -> {
                    Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(30), 3);
                    ReserveRequest r = new ReserveRequest(user, "k-bench", "gpt-4o-mini", 1000, 10);
                    while (System.nanoTime() < deadline) {
                        long t0 = System.nanoTime();
                        Decision d = engine.reserve(r);
                        h.recordValue(System.nanoTime() - t0);
                        if (d.mode() != expected || !d.admitted()) throw new IllegalStateException("not a " + expected + " admit: " + d);
                        SettleResult s = engine.settle(d.reservationId(), 900, 9);
                        if (s.status() != SettleResult.Status.SETTLED) throw new IllegalStateException("not settled: " + s);
                        pairs.incrementAndGet();
                    }
                    return h;
                }));
            }
            for (Future<Histogram> f : fs) hs.add(f.get());
        }
        double elapsed = (System.nanoTime() - start) / 1e9;
        Histogram all = new Histogram(TimeUnit.SECONDS.toNanos(30), 3);
        hs.forEach(all::add);
        return new Result(pairs.get() / elapsed, all.getValueAtPercentile(50) / 1e6, all.getValueAtPercentile(99) / 1e6);
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
