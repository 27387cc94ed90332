package dev.tokenmeter.edge;

import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.HdrHistogram.Histogram;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Edge benchmark (issue 4) — not a test. Drives non-streaming chat calls through the edge and, in the same run,
 * directly against the same fake OpenAI upstream, on loopback only, bounded in count and time:
 * <ol>
 *   <li>warm-up of both paths;</li>
 *   <li>open-loop pacing at {@code RATE} requests/s for {@code SECONDS} s, direct then through the edge; latency is
 *       measured from each request's scheduled start (so queueing counts), recorded in HdrHistogram; the added
 *       latency is edge minus direct at p50 and p99;</li>
 *   <li>maximum throughput: {@code WORKERS} closed-loop clients for {@code SECONDS} s, direct then edge.</li>
 * </ol>
 * The edge runs with the real Postgres (keys, prices) and publishes every event to the real Kafka broker; see
 * BENCHMARKS.md for the command and the recorded numbers. Optional arguments: rate, seconds, workers.
 */
public final class EdgeBenchmark {

    private static final String BODY = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in five words\"}]}";

    public static void main(String[] args) throws Exception {
        int rate = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        int workers = args.length > 2 ? Integer.parseInt(args[2]) : 32;
        if (rate <= 0 || rate > 20_000 || seconds <= 0 || seconds > 120 || workers <= 0 || workers > 512) {
            throw new IllegalArgumentException("rate 1..20000, seconds 1..120, workers 1..512");
        }
        try (Engines engines = Engines.create(Backend.EMBEDDED);
             FakeOpenAi openAi = FakeOpenAi.builder().maxRecordedRequests(0).build();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("UPSTREAM_REQUEST_TIMEOUT", "10s"));
             HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            User user = bed.newUser(Money.usd(1_000_000));
            HttpRequest direct = request(URI.create(openAi.baseUrl() + "/v1/chat/completions"), "sk-direct");
            HttpRequest edge = request(URI.create(bed.baseUrl() + "/v1/chat/completions"), user.key());

            System.out.printf("cores=%d rate=%d/s seconds=%d workers=%d java=%s%n",
                    Runtime.getRuntime().availableProcessors(), rate, seconds, workers, Runtime.version());
            openLoop(client, direct, rate, 3);
            openLoop(client, edge, rate, 3);

            long cpu0 = cpuNanos();
            Histogram sd = sequential(client, direct, 2000);
            long cpuDirect = cpuNanos() - cpu0;
            io.micrometer.core.instrument.Timer upstreamTimer = bed.app.registry().get("edge_upstream").timer();
            long upstreamCount = upstreamTimer.count();
            double upstreamTotalMs = upstreamTimer.totalTime(TimeUnit.MILLISECONDS);
            long cpu1 = cpuNanos();
            Histogram se = sequential(client, edge, 2000);
            long cpuEdge = cpuNanos() - cpu1;
            System.out.printf("CPU time of this JVM per call (client + fake, plus the edge on the edge path): direct %.0f us,"
                    + " edge %.0f us, added by the edge %.0f us%n", cpuDirect / 2000 / 1e3, cpuEdge / 2000 / 1e3, (cpuEdge - cpuDirect) / 2000 / 1e3);
            System.out.printf("sequential: mean time to the upstream's response headers inside the edge %.3f ms%n",
                    (upstreamTimer.totalTime(TimeUnit.MILLISECONDS) - upstreamTotalMs) / (upstreamTimer.count() - upstreamCount));
            System.out.printf("sequential (one call at a time, 2000 calls): direct p50 %.3f ms p99 %.3f ms; edge p50 %.3f ms p99 %.3f ms;"
                            + " added p50 %.3f ms p99 %.3f ms%n",
                    sd.getValueAtPercentile(50) / 1e6, sd.getValueAtPercentile(99) / 1e6,
                    se.getValueAtPercentile(50) / 1e6, se.getValueAtPercentile(99) / 1e6,
                    (se.getValueAtPercentile(50) - sd.getValueAtPercentile(50)) / 1e6,
                    (se.getValueAtPercentile(99) - sd.getValueAtPercentile(99)) / 1e6);

            Result d = openLoop(client, direct, rate, seconds);
            Result e = openLoop(client, edge, rate, seconds);
            System.out.println("open loop at " + rate + "/s:");
            System.out.println("  direct " + d);
            System.out.println("  edge   " + e);
            System.out.printf("  added latency p50 %.3f ms, p99 %.3f ms%n",
                    (e.h.getValueAtPercentile(50) - d.h.getValueAtPercentile(50)) / 1e6,
                    (e.h.getValueAtPercentile(99) - d.h.getValueAtPercentile(99)) / 1e6);

            double directMax = closedLoop(client, direct, workers, seconds);
            double edgeMax = closedLoop(client, edge, workers, seconds);
            System.out.printf("max throughput with %d workers: direct %.0f/s, edge %.0f/s (%.0f%% of direct)%n",
                    workers, directMax, edgeMax, 100 * edgeMax / directMax);
            System.out.printf("events pending in the sink at the end: %d%n", bed.sink.pendingEvents());
        }
    }

    private static HttpRequest request(URI uri, String key) {
        return HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer " + key)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(BODY)).build();
    }

    record Result(Histogram h, long errors, long sent) {
        @Override
        public String toString() {
            return String.format("n=%d errors=%d p50=%.3f ms p90=%.3f ms p99=%.3f ms p99.9=%.3f ms max=%.3f ms",
                    h.getTotalCount(), errors, h.getValueAtPercentile(50) / 1e6, h.getValueAtPercentile(90) / 1e6,
                    h.getValueAtPercentile(99) / 1e6, h.getValueAtPercentile(99.9) / 1e6, h.getMaxValue() / 1e6);
        }
    }

    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** One call at a time: the added cost of the edge without any queueing. */
    static Histogram sequential(HttpClient client, HttpRequest request, int calls) throws Exception {
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(30), 3);
        for (int i = 0; i < calls; i++) {
            long t0 = System.nanoTime();
            HttpResponse<byte[]> r = client.send(request, HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() == 200) {
                h.recordValue(System.nanoTime() - t0);
            }
        }
        return h;
    }

    /** Sends {@code rate × seconds} requests on a fixed schedule, whatever the responses do (open loop). */
    static Result openLoop(HttpClient client, HttpRequest request, int rate, int seconds) throws InterruptedException {
        int total = rate * seconds;
        long intervalNanos = 1_000_000_000L / rate;
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(30), 3);
        AtomicLong errors = new AtomicLong();
        CountDownLatch done = new CountDownLatch(total);
        long start = System.nanoTime() + 1_000_000;
        for (int i = 0; i < total; i++) {
            long scheduled = start + i * intervalNanos;
            long wait;
            while ((wait = scheduled - System.nanoTime()) > 0) {
                LockSupport.parkNanos(wait);
            }
            client.sendAsync(request, HttpResponse.BodyHandlers.ofByteArray()).whenComplete((r, t) -> {
                long latency = System.nanoTime() - scheduled;
                if (t != null || r.statusCode() != 200) {
                    errors.incrementAndGet();
                } else {
                    synchronized (h) {
                        h.recordValue(Math.min(latency, h.getHighestTrackableValue()));
                    }
                }
                done.countDown();
            });
        }
        if (!done.await(60, TimeUnit.SECONDS)) {
            System.out.println("  (gave up waiting for " + done.getCount() + " responses)");
        }
        synchronized (h) {
            return new Result(h.copy(), errors.get(), total);
        }
    }

    /** {@code workers} clients each sending the next request as soon as the last one answered; returns calls/s. */
    static double closedLoop(HttpClient client, HttpRequest request, int workers, int seconds) throws InterruptedException {
        AtomicLong ok = new AtomicLong();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        long started = System.nanoTime();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int w = 0; w < workers; w++) {
                pool.submit(() -> {
                    while (System.nanoTime() < deadline) {
                        try {
                            if (client.send(request, HttpResponse.BodyHandlers.ofByteArray()).statusCode() == 200) {
                                ok.incrementAndGet();
                            }
                        } catch (Exception e) {
                            if (e instanceof InterruptedException) {
                                return;
                            }
                        }
                    }
                });
            }
        }
        return ok.get() / ((System.nanoTime() - started) / 1e9);
    }
}
