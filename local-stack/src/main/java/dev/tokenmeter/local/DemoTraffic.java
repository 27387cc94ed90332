package dev.tokenmeter.local;

import java.io.InputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Realistic demo traffic through the edge, as an unchanged OpenAI client would send it: a mix of models (a dated
 * snapshot among them), calls in the flex and priority tiers, streaming and not, embeddings, some upstream failures and cut streams (steered through the fake
 * upstream's prompt directives), from users whose credit runs out at different times. Open-loop pacing
 * at a fixed rate, bounded in count and time.
 */
final class DemoTraffic {

    /** A demo user and the service API key it calls with. */
    record Caller(String userId, String apiKey) {
    }

    /** What the traffic saw. {@code eventIds} are the ids the edge returned in {@code x-tokenmeter-event-id}. */
    record Report(long sent, Map<Integer, Long> byStatus, Map<String, Long> byUserAndStatus, Set<String> eventIds,
                  long transportErrors) {
        long count(int status) {
            return byStatus.getOrDefault(status, 0L);
        }

        /** This traffic and {@code more}, as one report. */
        Report plus(Report more) {
            Map<Integer, Long> statuses = new java.util.TreeMap<>(byStatus);
            more.byStatus.forEach((k, v) -> statuses.merge(k, v, Long::sum));
            Map<String, Long> userStatuses = new java.util.TreeMap<>(byUserAndStatus);
            more.byUserAndStatus.forEach((k, v) -> userStatuses.merge(k, v, Long::sum));
            Set<String> ids = new java.util.HashSet<>(eventIds);
            ids.addAll(more.eventIds);
            return new Report(sent + more.sent, statuses, userStatuses, Set.copyOf(ids), transportErrors + more.transportErrors);
        }
    }

    /** Family names and a dated snapshot (priced through its alias, ADR 0068). */
    private static final List<String> CHAT_MODELS =
            List.of("gpt-4o-mini", "gpt-4.1-mini", "gpt-5-nano", "gpt-4o", "o4-mini", "gpt-4o-mini-2024-07-18");
    /** Calls in a service tier, as {model, tier}: the demo tier prices of {@link DemoData#seedTierPrices}. */
    private static final List<String[]> TIER_CALLS = List.of(new String[] {"o3", "flex"},
            new String[] {"gpt-4o-mini-2024-07-18", "priority"}, new String[] {"gpt-4o-mini", "priority"});
    /** Request labels (issue 17): most calls say which feature and customer they serve; some carry none. */
    private static final List<String> FEATURES = List.of("chat", "search", "summarize");
    private static final List<String> CUSTOMERS = List.of("acme-corp", "globex", "initech", "umbrella");
    private static final List<String> TOPICS = List.of("invoices", "a haiku about Kafka", "SQL window functions",
            "the difference between GCRA and token buckets", "a recipe for bread", "exactly-once semantics");

    /** The edges, called in turn (issue 18: two behind the load generator with --cluster). */
    private final List<URI> edges;
    private final List<Caller> callers;
    private final HttpClient http;
    /** Calls answered so far with an event id: live, for fault drills that watch the backlog. */
    final java.util.concurrent.atomic.LongAdder answeredWithEvent = new java.util.concurrent.atomic.LongAdder();
    /** Answers so far by status: live, so a fault drill can count what was answered while the fault lasted. */
    final Map<Integer, LongAdder> liveByStatus = new ConcurrentHashMap<>();

    /** Calls sent so far per edge (the edge each call was sent to first). */
    final Map<URI, LongAdder> sentByEdge = new ConcurrentHashMap<>();
    /**
     * Issue 18, the load generator in front of several edges: calls an edge refused the connection for (it is down),
     * sent to the next edge instead. A call under way when an edge dies is not moved (the edge may have taken it).
     */
    final LongAdder movedCalls = new LongAdder();
    /** Event ids answered so far, by the edge that answered: live, for drills that stop or kill an edge. */
    final Map<URI, Set<String>> answeredIdsByEdge = new ConcurrentHashMap<>();
    /**
     * Event ids of answers whose body broke off on the way (the edge died or the connection was cut mid-answer): the
     * caller had the id in the headers but not the whole answer. An upstream's cut stream is not among them: the edge
     * ends that answer normally.
     */
    final Set<String> brokenAnswerIds = ConcurrentHashMap.newKeySet();
    private volatile boolean stopping;

    DemoTraffic(URI edge, List<Caller> callers) {
        this(List.of(edge), callers);
    }

    DemoTraffic(List<URI> edges, List<Caller> callers) {
        this.edges = List.copyOf(edges);
        this.callers = List.copyOf(callers);
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).version(HttpClient.Version.HTTP_1_1).build();
    }

    /**
     * Ends a {@link #run} early: no call is sent after this, the calls under way are waited for, and the report counts
     * the calls actually sent. For drills whose length is set by what they wait for, not by a clock.
     */
    void stop() {
        stopping = true;
    }

    Report run(Duration duration, int ratePerSecond, long seed, PrintStream progress) throws InterruptedException {
        long total = Math.max(1, duration.toMillis() * ratePerSecond / 1000);
        long intervalNanos = 1_000_000_000L / ratePerSecond;
        Random random = new Random(seed);
        Map<Integer, LongAdder> byStatus = new ConcurrentHashMap<>();
        Map<String, LongAdder> byUserStatus = new ConcurrentHashMap<>();
        Set<String> eventIds = ConcurrentHashMap.newKeySet();
        LongAdder transportErrors = new LongAdder();
        AtomicLong done = new AtomicLong();
        long start = System.nanoTime();
        long sent = 0;
        try (ExecutorService workers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (long i = 0; i < total && !stopping; i++) {
                long due = start + i * intervalNanos;
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    TimeUnit.NANOSECONDS.sleep(wait);
                }
                Caller caller = callers.get(random.nextInt(callers.size()));
                int first = (int) (i % edges.size());
                URI edge = edges.get(first);
                sentByEdge.computeIfAbsent(edge, e -> new LongAdder()).increment();
                HttpRequest request = nextRequest(edge, caller, random);
                sent++;
                workers.submit(() -> {
                    int status;
                    try {
                        Answer answer = send(request, first);
                        HttpResponse<InputStream> response = answer.response();
                        boolean broken = false;
                        try (InputStream body = response.body()) {
                            body.transferTo(java.io.OutputStream.nullOutputStream());
                        } catch (java.io.IOException cut) {
                            broken = true; // counted as answered, as before; drills that kill an edge read brokenAnswerIds
                        }
                        status = response.statusCode();
                        boolean brokenOff = broken;
                        response.headers().firstValue("x-tokenmeter-event-id").ifPresent(id -> {
                            eventIds.add(id);
                            answeredWithEvent.increment();
                            if (brokenOff) {
                                brokenAnswerIds.add(id);
                            }
                            answeredIdsByEdge.computeIfAbsent(answer.edge(), e -> ConcurrentHashMap.newKeySet()).add(id);
                        });
                    } catch (Exception e) {
                        status = -1;
                        transportErrors.increment();
                    }
                    byStatus.computeIfAbsent(status, s -> new LongAdder()).increment();
                    liveByStatus.computeIfAbsent(status, s -> new LongAdder()).increment();
                    byUserStatus.computeIfAbsent(caller.userId() + " " + status, s -> new LongAdder()).increment();
                    done.incrementAndGet();
                });
                if (i % Math.max(1, ratePerSecond / 2) == 0) {
                    drawProgress(progress, done.get(), total, byStatus);
                }
            }
            while (done.get() < sent && System.nanoTime() - start < duration.toNanos() + TimeUnit.SECONDS.toNanos(60)) {
                drawProgress(progress, done.get(), total, byStatus);
                TimeUnit.MILLISECONDS.sleep(200);
            }
        }
        drawProgress(progress, done.get(), total, byStatus);
        progress.println();
        return new Report(sent, snapshot(byStatus), snapshot(byUserStatus), Set.copyOf(eventIds), transportErrors.sum());
    }

    /** An answer and the edge that gave it. */
    private record Answer(URI edge, HttpResponse<InputStream> response) {
    }

    /**
     * Sends to edge {@code first}; when an edge refuses the connection (nothing reached it), to the next one, until
     * each was tried once.
     */
    private Answer send(HttpRequest request, int first) throws java.io.IOException, InterruptedException {
        for (int attempt = 0; ; attempt++) {
            URI edge = edges.get((first + attempt) % edges.size());
            HttpRequest toEdge = attempt == 0 ? request
                    : HttpRequest.newBuilder(request, (name, value) -> true).uri(edge.resolve(request.uri().getRawPath())).build();
            try {
                return new Answer(edge, http.send(toEdge, HttpResponse.BodyHandlers.ofInputStream()));
            } catch (java.net.ConnectException refused) {
                if (attempt + 1 >= edges.size()) {
                    throw refused;
                }
                movedCalls.increment();
            }
        }
    }

    private HttpRequest nextRequest(URI edge, Caller caller, Random random) {
        int roll = random.nextInt(100);
        String directive = roll < 3 ? " [[fake:status=500]]" : roll < 5 ? " [[fake:cut-after=3]]" : "";
        boolean embeddings = random.nextInt(100) < 10;
        String path;
        String body;
        if (embeddings) {
            path = "/v1/embeddings";
            body = "{\"model\":\"text-embedding-3-small\",\"input\":\"" + TOPICS.get(random.nextInt(TOPICS.size())) + "\"}";
        } else {
            boolean stream = random.nextInt(100) < 35 || directive.contains("cut-after");
            String model = CHAT_MODELS.get(random.nextInt(CHAT_MODELS.size()));
            String tier = "";
            if (random.nextInt(100) < 20) {
                String[] call = TIER_CALLS.get(random.nextInt(TIER_CALLS.size()));
                model = call[0];
                tier = "\"service_tier\":\"" + call[1] + "\",";
            }
            path = "/v1/chat/completions";
            body = "{\"model\":\"" + model + "\"," + tier + "\"max_tokens\":" + (16 + random.nextInt(48)) + ","
                    + (stream ? "\"stream\":true," : "")
                    + "\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},"
                    + "{\"role\":\"user\",\"content\":\"Tell me about " + TOPICS.get(random.nextInt(TOPICS.size())) + "." + directive + "\"}]}";
        }
        HttpRequest.Builder request = HttpRequest.newBuilder(edge.resolve(path))
                .timeout(Duration.ofSeconds(30))
                .header("Authorization", "Bearer " + caller.apiKey())
                .header("Content-Type", "application/json");
        if (random.nextInt(100) < 85) {
            request.header("x-tokenmeter-tags", "feature=" + FEATURES.get(random.nextInt(FEATURES.size()))
                    + ",customer=" + CUSTOMERS.get(random.nextInt(CUSTOMERS.size())));
        }
        return request.POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    private static void drawProgress(PrintStream out, long done, long total, Map<Integer, LongAdder> byStatus) {
        int width = 30;
        int filled = (int) (width * done / Math.max(1, total));
        StringBuilder sb = new StringBuilder("\r[");
        sb.append("#".repeat(filled)).append(".".repeat(width - filled)).append("] ");
        sb.append(String.format("%3d%% %d/%d", 100 * done / Math.max(1, total), done, total));
        byStatus.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> sb.append("  ").append(e.getKey() < 0 ? "err" : e.getKey()).append(':').append(e.getValue().sum()));
        out.print(sb);
        out.flush();
    }

    private static <K> Map<K, Long> snapshot(Map<K, LongAdder> counters) {
        Map<K, Long> copy = new java.util.TreeMap<>();
        counters.forEach((k, v) -> copy.put(k, v.sum()));
        return copy;
    }
}
