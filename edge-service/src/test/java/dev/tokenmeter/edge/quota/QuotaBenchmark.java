package dev.tokenmeter.edge.quota;

import dev.tokenmeter.edge.account.Account;
import dev.tokenmeter.edge.account.AccountDirectory;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.Histogram;

/**
 * Issue 3 benchmark (a program, not a test): reserve and reserve+settle decisions per second and
 * p50/p99 at concurrency 1, 8, 32, 64 against a redis-server started here on a free port, and in the
 * same run {@code redis-benchmark} running the same reserve script with EVALSHA at the same
 * concurrency. Prints a Markdown table for BENCHMARKS.md.
 *
 * <p>Run: {@code bin/benchmark edge-service dev.tokenmeter.edge.quota.QuotaBenchmark [secondsPerPhase]}
 * (default 5 s per phase; system properties {@code quota.bench.redis-server} and
 * {@code quota.bench.redis-benchmark} name the binaries, default from PATH; {@code quota.bench.concurrency}
 * the levels, default 1,8,32,64).
 */
public final class QuotaBenchmark {

    /** Concurrency levels; {@code -Dquota.bench.concurrency=1} measures one level (e.g. under a profiler). */
    private static final int[] CONCURRENCY = java.util.Arrays.stream(System.getProperty("quota.bench.concurrency", "1,8,32,64")
            .split(",")).mapToInt(v -> Integer.parseInt(v.trim())).toArray();
    private static final long MAX_OPS_PER_PHASE = 2_000_000;

    record Result(double opsPerSec, double p50Ms, double p99Ms, long ops) {}

    public static void main(String[] args) throws Exception {
        long seconds = args.length > 0 ? Long.parseLong(args[0]) : 5;
        String serverBin = System.getProperty("quota.bench.redis-server", "redis-server");
        String benchBin = System.getProperty("quota.bench.redis-benchmark", "redis-benchmark");
        int port = freePort();
        Path dir = Files.createTempDirectory("quota-bench");
        Process server = new ProcessBuilder(serverBin, "--port", Integer.toString(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", dir.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("redis.log").toFile()).start();
        try {
            waitForPort(port);
            run(port, seconds, benchBin, serverBin);
        } finally {
            server.destroy();
            server.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private static void run(int port, long seconds, String benchBin, String serverBin) throws Exception {
        Account rb = BenchmarkAccounts.unlimited("rb");
        AccountDirectory directory = BenchmarkAccounts.anyUserUnlimited();
        UsageBaseline zero = BenchmarkAccounts.noUsage();
        try (QuotaRedis redis = QuotaRedis.connect("redis://127.0.0.1:" + port, Duration.ofSeconds(1));
             QuotaEngine engine = QuotaEngine.builder().redis(redis.connection()).accountDirectory(directory)
                     .usageBaseline(zero).config(QuotaConfig.defaults().withBackgroundOff()).build().warmUp()) {
            // Counters of user rb exist (rebuilt once), so redis-benchmark's calls take the full path.
            engine.reserve(new ReserveRequest("rb", "k-rb", "gpt-4o-mini", 1000, 10));
            String sha = redis.connection().sync().scriptLoad(QuotaEngine.reserveScriptSource());

            StringBuilder table = new StringBuilder();
            table.append("| concurrency | engine reserve/s | p50 ms | p99 ms | engine reserve+settle/s | p50 ms | p99 ms | redis-benchmark EVALSHA reserve/s | p50 ms | p99 ms | rate ratio (reserve) | p99 ratio (reserve) |\n");
            table.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            // JIT warm-up before anything is measured (C2 compiles after ~10k calls).
            phase(engine, 8, 2 * seconds, true);
            for (int c : CONCURRENCY) {
                phase(engine, c, 1, false); // settle this level's threads
                Result reserve = phase(engine, c, seconds, false);
                Result cycle = phase(engine, c, seconds, true);
                long n = Math.max(10_000, Math.min(MAX_OPS_PER_PHASE, (long) (reserve.opsPerSec() * seconds)));
                Result rbr = redisBenchmark(benchBin, port, c, n, sha, rb);
                table.append(String.format("| %d | %,.0f | %.3f | %.3f | %,.0f | %.3f | %.3f | %,.0f | %.3f | %.3f | %.0f%% | %.2fx |%n",
                        c, reserve.opsPerSec(), reserve.p50Ms(), reserve.p99Ms(), cycle.opsPerSec(), cycle.p50Ms(), cycle.p99Ms(),
                        rbr.opsPerSec(), rbr.p50Ms(), rbr.p99Ms(), 100 * reserve.opsPerSec() / rbr.opsPerSec(),
                        reserve.p99Ms() / rbr.p99Ms()));
                System.err.println("done concurrency " + c);
            }
            System.out.println("redis-server: " + version(serverBin) + ", " + seconds + " s per engine phase");
            System.out.println(table);
            // Where the concurrency-1 gap comes from, measured back to back: any Lettuce call's round trip
            // (caller -> event loop -> Redis -> event loop -> caller) against redis-benchmark's PING, and the bare
            // script call (QuotaScripts, no engine around it) against the engine's reserve above.
            var sync = redis.connection().sync();
            Result ping = single(sync::ping, seconds);
            Result rbPing = runRedisBenchmark(benchBin, port, 1, Math.max(10_000, (long) (ping.opsPerSec() * seconds)),
                    List.of("-t", "ping_mbulk"), "PING_MBULK");
            QuotaScripts scripts = new QuotaScripts(redis.connection());
            Object[] reserveArgs = reserveArgs(rb);
            String[] reserveKeys = java.util.Arrays.copyOf(reserveArgs, 12, String[].class);
            Object[] argv = java.util.Arrays.copyOfRange(reserveArgs, 12, reserveArgs.length);
            Result bare = single(() -> {
                argv[1] = new QuotaKeys(rb.userId()).newReservationId(YearMonth.now(ZoneOffset.UTC), "k-rb", false);
                scripts.call(QuotaScripts.Script.RESERVE, reserveKeys, argv);
            }, seconds);
            System.out.printf("Concurrency 1: Lettuce PING %,.0f/s p50 %.3f p99 %.3f ms | redis-benchmark PING %,.0f/s p50 %.3f p99 %.3f ms"
                            + " | bare reserve script through QuotaScripts %,.0f/s p50 %.3f p99 %.3f ms%n",
                    ping.opsPerSec(), ping.p50Ms(), ping.p99Ms(), rbPing.opsPerSec(), rbPing.p50Ms(), rbPing.p99Ms(),
                    bare.opsPerSec(), bare.p50Ms(), bare.p99Ms());
        }
    }

    /** One thread calling `call` for `seconds` after a JIT warm-up. */
    private static Result single(Runnable call, long seconds) {
        for (int i = 0; i < 20_000; i++) call.run();
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        long start = System.nanoTime();
        long deadline = start + TimeUnit.SECONDS.toNanos(seconds);
        long n = 0;
        while (System.nanoTime() < deadline && n < MAX_OPS_PER_PHASE) {
            long t0 = System.nanoTime();
            call.run();
            h.recordValue(System.nanoTime() - t0);
            n++;
        }
        return new Result(n / ((System.nanoTime() - start) / 1e9), h.getValueAtPercentile(50) / 1e6, h.getValueAtPercentile(99) / 1e6, n);
    }

    /** c threads calling reserve (and settle) for `seconds`; latency per decision (or per reserve+settle pair). */
    private static Result phase(QuotaEngine engine, int c, long seconds, boolean settle) throws Exception {
        ReserveRequest r = new ReserveRequest("bench", "k-bench", "gpt-4o-mini", 1000, 10);
        return timed(c, seconds, n -> {
            Decision d = engine.reserve(r);
            if (d.mode() != DecisionMode.REDIS || !d.admitted()) throw new IllegalStateException("not a Redis admit: " + d);
            if (settle) engine.settle(d.reservationId(), 900, 9);
        });
    }

    /**
     * c threads running {@code call} (given the call's number, 0, 1, ...) for `seconds` or {@link #MAX_OPS_PER_PHASE}
     * calls; the rate and the latency per call. Also {@link TenantBudgetBenchmark}'s.
     */
    static Result timed(int c, long seconds, java.util.function.LongConsumer call) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        AtomicLong ops = new AtomicLong();
        List<Histogram> hs = new ArrayList<>();
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(c)) {
            List<Future<Histogram>> fs = new ArrayList<>();
            for (int i = 0; i < c; i++) {
                fs.add(pool.submit(() -> {
                    Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
                    long n;
                    while (System.nanoTime() < deadline && (n = ops.getAndIncrement()) < MAX_OPS_PER_PHASE) {
                        long t0 = System.nanoTime();
                        call.accept(n);
                        h.recordValue(System.nanoTime() - t0);
                    }
                    return h;
                }));
            }
            for (Future<Histogram> f : fs) hs.add(f.get());
        }
        double elapsed = (System.nanoTime() - start) / 1e9;
        Histogram all = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        hs.forEach(all::add);
        return new Result(all.getTotalCount() / elapsed, all.getValueAtPercentile(50) / 1e6, all.getValueAtPercentile(99) / 1e6,
                all.getTotalCount());
    }

    /** redis-benchmark with the same reserve script, same argument shapes, a random reservation id per call. */
    private static Result redisBenchmark(String bin, int port, int c, long n, String sha, Account a) throws Exception {
        List<String> tail = new ArrayList<>(List.of("-r", "1000000000", "EVALSHA", sha, "12"));
        for (Object o : reserveArgs(a)) tail.add(o.toString());
        return runRedisBenchmark(bin, port, c, n, tail, "EVALSHA");
    }

    /** The reserve script's 12 keys then its arguments for user `a` (ARGV 2, the reservation id, has redis-benchmark's placeholders). */
    private static Object[] reserveArgs(Account a) {
        QuotaKeys k = new QuotaKeys(a.userId());
        Instant now = Instant.now();
        YearMonth m = YearMonth.from(now.atZone(ZoneOffset.UTC));
        return new Object[]{k.reservations(), k.deadlines(), k.purge(), k.reserved(), k.settled(m), k.personal(m),
                k.thresholds(m), k.userRequests(), k.userTokens(), k.keyRequests("k-rb"), k.keyTokens("k-rb"),
                k.keyBudgets(),
                // A reservation id of the engine's shape and length (tag, month, key, 36 random characters).
                now.toEpochMilli(), k.tag() + ":" + m + ":r:k-rb:__rand_int__-__rand_int__-__rand_int__", 1000L, 10L, "ACTIVE",
                a.monthlyCreditNanoUsd(), (long) a.requestsPerMinute(), a.tokensPerMinute(), (long) a.requestsPerMinute(),
                a.tokensPerMinute(), 0L, 600000L, 86400000L, 100L, 3000000000L, (long) a.softLimitPercent(),
                QuotaKeys.keyBudgetField(m, "k-rb"), ReserveRequest.NO_KEY_BUDGET};
    }

    /** redis-benchmark -c c -n n --csv with `tail`; the p50/p99 and rate of the CSV line starting with `test`. */
    private static Result runRedisBenchmark(String bin, int port, int c, long n, List<String> tail, String test) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(bin, "-h", "127.0.0.1", "-p", Integer.toString(port), "-n", Long.toString(n),
                "-c", Integer.toString(c), "--csv"));
        cmd.addAll(tail);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) throw new IllegalStateException("redis-benchmark failed: " + out);
        // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        String line = out.lines().filter(l -> l.startsWith("\"" + test)).findFirst()
                .orElseThrow(() -> new IllegalStateException("no " + test + " line in: " + out));
        String[] f = line.replace("\"", "").split(",");
        return new Result(Double.parseDouble(f[1]), Double.parseDouble(f[4]), Double.parseDouble(f[6]), n);
    }

    private static String version(String serverBin) throws Exception {
        Process p = new ProcessBuilder(serverBin, "--version").redirectErrorStream(true).start();
        String v = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        p.waitFor(10, TimeUnit.SECONDS);
        return v;
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static void waitForPort(int port) {
        org.awaitility.Awaitility.await("redis-server listens on " + port)
                .atMost(java.time.Duration.ofSeconds(10)).pollInterval(java.time.Duration.ofMillis(50))
                .until(() -> {
                    try (var s = new java.net.Socket("127.0.0.1", port)) {
                        return true;
                    } catch (IOException e) {
                        return false;
                    }
                });
    }
}
