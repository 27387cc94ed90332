package dev.tokenmeter.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Issue 19 in the demo, after the main traffic: Redis in front of the upstream. The {@link #CACHE_PLAN} plan caches
 * deterministic answers (set through the admin API by {@link DemoControls}), so {@link #REPEATED} identical calls
 * make one miss and hits billed {@link #HIT_PRICE_PERCENT} %, {@link #CONCURRENT} identical calls sent at once (the
 * fake upstream answers them after 300 ms) go upstream once — one miss, the rest single-flight followers answered
 * as hits — and {@link #ASYNC_JOBS} async jobs are queued and polled until they end. Every call is one event: their
 * ids (a job's id is its event id) join the traffic's, so the reconciliation checks them like the rest.
 */
final class DemoRedisFront {

    static final String CACHE_PLAN = "pro";
    static final int CACHE_TTL_SECONDS = 600;
    static final int HIT_PRICE_PERCENT = 50;
    static final int REPEATED = 3;
    static final int CONCURRENT = 20;
    static final int ASYNC_JOBS = 5;
    private static final Duration JOB_DEADLINE = Duration.ofSeconds(60);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The edges, in turn: with two, the concurrent identical calls meet in the shared cache Redis (single flight). */
    private final List<URI> edges;
    private final AtomicInteger next = new AtomicInteger();
    private final DemoTraffic.Caller caller;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5))
            .version(HttpClient.Version.HTTP_1_1).build();
    private final Map<Integer, Long> byStatus = new ConcurrentHashMap<>();
    private final Set<String> eventIds = ConcurrentHashMap.newKeySet();
    private final AtomicLong sent = new AtomicLong();

    DemoRedisFront(List<URI> edges, DemoTraffic.Caller caller) {
        this.edges = List.copyOf(edges);
        this.caller = caller;
    }

    /** The admin API body that turns the cache on for {@link #CACHE_PLAN}. */
    static String planCacheBody() {
        return "{\"response_cache_ttl_seconds\":" + CACHE_TTL_SECONDS + ",\"cache_hit_price_percent\":" + HIT_PRICE_PERCENT + "}";
    }

    /**
     * Sends the calls and the jobs and prints what the edge answered; the report holds them for the reconciliation.
     * {@code ok} is false when the edge did not answer as the cache's rules say (one miss per distinct request,
     * every job ended).
     */
    Outcome run(long seed, PrintStream out) throws Exception {
        out.println();
        out.println("Redis in front of the upstream (issue 19; plan " + CACHE_PLAN + " caches deterministic calls "
                + CACHE_TTL_SECONDS + " s, hits billed " + HIT_PRICE_PERCENT + " %)");
        boolean ok = true;

        String repeated = chat("Summarise exactly-once delivery in one line. (demo " + seed + ")");
        List<String> sequential = new ArrayList<>();
        for (int i = 0; i < REPEATED; i++) {
            sequential.add(cacheHeader(send(post("/v1/chat/completions", repeated))));
        }
        out.println("  " + REPEATED + " identical calls one after another: " + String.join(", ", sequential));
        ok &= sequential.equals(expected(REPEATED));

        String together = chat("Name three Redis data types. [[fake:latency=300ms]] (demo " + seed + ")");
        List<Future<HttpResponse<String>>> inFlight = new ArrayList<>();
        try (ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < CONCURRENT; i++) {
                HttpRequest request = post("/v1/chat/completions", together);
                inFlight.add(callers.submit(() -> send(request)));
            }
        }
        Map<String, Integer> concurrent = new TreeMap<>();
        for (Future<HttpResponse<String>> f : inFlight) {
            concurrent.merge(String.valueOf(cacheHeader(f.get())), 1, Integer::sum);
        }
        out.println("  " + CONCURRENT + " identical calls at once" + (edges.size() > 1 ? " over " + edges.size() + " edges" : "")
                + ": " + concurrent + " (one upstream call; the others waited for it and were answered from it)");
        ok &= concurrent.equals(Map.of("miss", 1, "hit", CONCURRENT - 1));

        Map<String, String> jobs = new TreeMap<>();
        for (int i = 0; i < ASYNC_JOBS; i++) {
            HttpResponse<String> accepted = send(post("/v1/async/chat/completions",
                    chat("Async job " + i + ": write a limerick about queues.").replace("\"temperature\":0,", "")));
            if (accepted.statusCode() == 202) {
                String id = JSON.readTree(accepted.body()).get("id").asText();
                eventIds.add(id); // a job's id is its call's event id (ADR 0083)
                jobs.put(id, "queued");
            }
        }
        long deadline = System.nanoTime() + JOB_DEADLINE.toNanos();
        while (jobs.containsValue("queued") || jobs.containsValue("running")) {
            if (System.nanoTime() > deadline) {
                break;
            }
            for (Map.Entry<String, String> job : jobs.entrySet()) {
                HttpResponse<String> state = http.send(HttpRequest.newBuilder(nextEdge().resolve("/v1/async/jobs/" + job.getKey()))
                        .timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer " + caller.apiKey()).GET().build(),
                        HttpResponse.BodyHandlers.ofString());
                JsonNode status = JSON.readTree(state.body()).get("status");
                job.setValue(status == null ? "unknown (HTTP " + state.statusCode() + ")" : status.asText());
            }
            Stack.pause(Duration.ofMillis(250));
        }
        Map<String, Integer> ended = new TreeMap<>();
        jobs.values().forEach(s -> ended.merge(s, 1, Integer::sum));
        out.println("  " + ASYNC_JOBS + " async jobs (POST /v1/async/chat/completions, 202, then GET /v1/async/jobs/{id}): " + ended);
        ok &= ended.equals(Map.of("succeeded", ASYNC_JOBS));
        return new Outcome(ok, new DemoTraffic.Report(sent.get(), new TreeMap<>(byStatus), Map.of(), Set.copyOf(eventIds), 0));
    }

    /** Whether the edge answered as the rules say, and the calls as traffic for the reconciliation. */
    record Outcome(boolean ok, DemoTraffic.Report report) {
    }

    private static List<String> expected(int calls) {
        List<String> e = new ArrayList<>(List.of("miss"));
        for (int i = 1; i < calls; i++) {
            e.add("hit");
        }
        return e;
    }

    /** A deterministic chat completion (temperature 0): the kind the cache may answer again. */
    private static String chat(String text) {
        return "{\"model\":\"gpt-4o-mini\",\"temperature\":0,\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\""
                + text.replace("\"", "'") + "\"}]}";
    }

    private URI nextEdge() {
        return edges.get(Math.floorMod(next.getAndIncrement(), edges.size()));
    }

    private HttpRequest post(String path, String body) {
        return HttpRequest.newBuilder(nextEdge().resolve(path)).timeout(Duration.ofSeconds(60))
                .header("Authorization", "Bearer " + caller.apiKey()).header("Content-Type", "application/json")
                .header("x-tokenmeter-tags", "feature=chat,customer=acme-corp")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    private HttpResponse<String> send(HttpRequest request) throws Exception {
        sent.incrementAndGet();
        HttpResponse<String> r = http.send(request, HttpResponse.BodyHandlers.ofString());
        byStatus.merge(r.statusCode(), 1L, Long::sum);
        r.headers().firstValue("x-tokenmeter-event-id").ifPresent(eventIds::add);
        return r;
    }

    private static String cacheHeader(HttpResponse<String> r) {
        return r.headers().firstValue("x-tokenmeter-cache").orElse("none (HTTP " + r.statusCode() + ")");
    }
}
