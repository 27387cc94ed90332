package dev.tokenmeter.edge;

import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.redis.EmbeddedRedisEngine;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;

import static dev.tokenmeter.db.jooq.Tables.PLAN;

/**
 * Issue 19's cache numbers — a program, not a test. One edge (wired as EdgeApp wires it, on the embedded Kafka, quota
 * Redis and Postgres, a second Redis for the cache, the fake upstream), one cached entry, then per round:
 * <ul>
 *   <li>latency: {@code calls} sequential hits through the edge (HTTP/1.1 client in this JVM), against {@code calls}
 *       sequential raw GETs of a value of the entry's size on the cache Redis from this JVM (Lettuce, sync);</li>
 *   <li>throughput: hits per second at {@code concurrency} callers for {@code seconds}, against
 *       {@code redis-benchmark -t get -d <entry size> -c <concurrency>} on the same Redis.</li>
 * </ul>
 * Prints every round and the medians of the per-round ratios.
 * {@code bin/benchmark edge-service dev.tokenmeter.edge.ResponseCacheBenchmark [rounds] [calls] [concurrency] [seconds]}
 */
public final class ResponseCacheBenchmark {

    private ResponseCacheBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int calls = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
        int concurrency = args.length > 2 ? Integer.parseInt(args[2]) : 16;
        int seconds = args.length > 3 ? Integer.parseInt(args[3]) : 10;
        try (Engines engines = Engines.create(Backend.EMBEDDED);
             EmbeddedRedisEngine cacheRedis = EmbeddedRedisEngine.launch();
             FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("RESPONSE_CACHE_REDIS_URI", cacheRedis.uri()));
             RedisClient raw = RedisClient.create(cacheRedis.uri());
             StatefulRedisConnection<byte[], byte[]> rawConnection = raw.connect(ByteArrayCodec.INSTANCE)) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000_000_000L, 1_000_000_000);
            bed.db.update(PLAN).set(PLAN.RESPONSE_CACHE_TTL_SECONDS, 86_400).set(PLAN.CACHE_HIT_PRICE_PERCENT, 100)
                    .where(PLAN.PLAN_ID.eq("plan-" + user.userId())).execute();
            String body = "{\"model\":\"gpt-4o-mini\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"benchmark entry\"}]}";
            HttpRequest hit = bed.sdkRequest("/v1/chat/completions", user.key(), body).build();
            // The same call, not cacheable (temperature 0.7): the metered path through the edge to the fake upstream.
            HttpRequest uncached = bed.sdkRequest("/v1/chat/completions", user.key(), body.replace("\"temperature\":0", "\"temperature\":0.7")).build();
            HttpResponse<String> first = bed.client.send(hit, HttpResponse.BodyHandlers.ofString());
            if (first.statusCode() != 200) {
                throw new IllegalStateException("priming call: " + first.statusCode() + " " + first.body());
            }
            byte[] entryKey = rawConnection.sync().keys("rc:{" + user.tenantId() + "}:*")
                    .stream().findFirst().orElseThrow();
            int entryBytes = rawConnection.sync().strlen(entryKey).intValue();
            byte[] rawKey = "bench:raw".getBytes(StandardCharsets.UTF_8);
            rawConnection.sync().set(rawKey, new byte[entryBytes]);
            System.out.printf("entry %d bytes; %d rounds of %d sequential calls, then %d s at %d callers%n",
                    entryBytes, rounds, calls, seconds, concurrency);

            List<Double> latencyRatios = new ArrayList<>();
            List<Double> throughputRatios = new ArrayList<>();
            for (int round = 1; round <= rounds; round++) {
                long[] hitNanos = new long[calls];
                long[] getNanos = new long[calls];
                long[] uncachedNanos = new long[calls];
                for (int i = 0; i < calls; i++) {
                    long t2 = System.nanoTime();
                    HttpResponse<byte[]> u = bed.client.send(uncached, HttpResponse.BodyHandlers.ofByteArray());
                    uncachedNanos[i] = System.nanoTime() - t2;
                    if (u.statusCode() != 200 || u.headers().firstValue("x-tokenmeter-cache").isPresent()) {
                        throw new IllegalStateException("uncached call: " + u.statusCode());
                    }
                    long t0 = System.nanoTime();
                    HttpResponse<byte[]> r = bed.client.send(hit, HttpResponse.BodyHandlers.ofByteArray());
                    hitNanos[i] = System.nanoTime() - t0;
                    if (r.statusCode() != 200 || !"hit".equals(r.headers().firstValue("x-tokenmeter-cache").orElse(null))) {
                        throw new IllegalStateException("not a hit: " + r.statusCode());
                    }
                    long t1 = System.nanoTime();
                    rawConnection.sync().get(rawKey);
                    getNanos[i] = System.nanoTime() - t1;
                }
                double hitMedian = median(hitNanos) / 1e3;
                double getMedian = median(getNanos) / 1e3;
                double hitsPerSecond = callsPerSecond(bed, hit, 200, concurrency, seconds);
                double getsPerSecond = redisBenchmarkGets(cacheRedis, entryBytes, concurrency);
                latencyRatios.add(hitMedian / getMedian);
                throughputRatios.add(hitsPerSecond / getsPerSecond);
                System.out.printf("round %d: hit p50 %.0f us p99 %.0f us | raw GET p50 %.0f us p99 %.0f us | ratio %.1fx"
                                + " | uncached call p50 %.0f us | hits %.0f/s vs redis-benchmark GET %.0f/s = %.1f %%%n",
                        round, hitMedian, p99(hitNanos) / 1e3, getMedian, p99(getNanos) / 1e3, hitMedian / getMedian,
                        median(uncachedNanos) / 1e3,
                        hitsPerSecond, getsPerSecond, 100 * hitsPerSecond / getsPerSecond);
            }
            System.out.printf("median of ratios: hit latency / raw GET %.1fx (target <= 2x); hit throughput / redis-benchmark GET %.1f %% (target >= 50 %%)%n",
                    medianOf(latencyRatios), 100 * medianOf(throughputRatios));
        }
    }

    /** Calls of {@code request} per second at {@code concurrency} callers in a fixed window; each must answer {@code status}. */
    static double callsPerSecond(EdgeTestBed bed, HttpRequest request, int status, int concurrency, int seconds) throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        LongAdder done = new LongAdder();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> callers = new ArrayList<>();
            for (int c = 0; c < concurrency; c++) {
                callers.add(pool.submit(() -> {
                    while (!stop.get()) {
                        HttpResponse<byte[]> r = bed.client.send(request, HttpResponse.BodyHandlers.ofByteArray());
                        if (r.statusCode() != status) {
                            throw new IllegalStateException("answered " + r.statusCode() + " " + new String(r.body(), StandardCharsets.UTF_8));
                        }
                        done.increment();
                    }
                    return null;
                }));
            }
            long t0 = System.nanoTime();
            Thread.sleep(seconds * 1000L); // a fixed measuring window
            stop.set(true);
            double elapsed = (System.nanoTime() - t0) / 1e9;
            for (Future<?> f : callers) {
                f.get();
            }
            return done.sum() / elapsed;
        }
    }

    /** GETs per second by {@code redis-benchmark} at this value size and concurrency (its own -n 200000 run). */
    private static double redisBenchmarkGets(EmbeddedRedisEngine redis, int valueBytes, int concurrency) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("redis-benchmark", "-h", redis.host(), "-p", Integer.toString(redis.port()),
                "--user", redis.user(), "-a", redis.password(), "-t", "get", "-d", Integer.toString(valueBytes),
                "-c", Integer.toString(concurrency), "-n", "200000", "-q", "--csv").redirectErrorStream(true);
        Process p = pb.start();
        String out;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            out = String.join("\n", in.lines().toList());
        }
        p.waitFor();
        for (String line : out.split("\n")) {
            if (line.startsWith("\"GET\"")) {
                return Double.parseDouble(line.split(",")[1].replace("\"", ""));
            }
        }
        throw new IllegalStateException("no GET line from redis-benchmark: " + out.replace(redis.password(), "***"));
    }

    static double median(long[] v) {
        long[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    private static double p99(long[] v) {
        long[] s = v.clone();
        Arrays.sort(s);
        return s[(int) Math.min(s.length - 1, Math.round(s.length * 0.99))];
    }

    static double medianOf(List<Double> v) {
        List<Double> s = new ArrayList<>(v);
        s.sort(null);
        return s.get(s.size() / 2);
    }
}
