package dev.tokenmeter.testkit.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.io.EofException;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Blocker;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * A fake OpenAI API on loopback: the only fake in the project. It speaks OpenAI's wire format (JSON bodies,
 * SSE streams, error objects, {@code x-request-id} and rate-limit headers) for {@code POST /v1/chat/completions},
 * {@code /v1/completions}, {@code /v1/embeddings}, {@code /v1/responses} and {@code GET /v1/models}, and reports
 * a deterministic usage that {@link #usageFor(String, String)} predicts (formula in the package documentation).
 *
 * <p>Runs on Jetty's core API (no servlet layer) with handlers on virtual threads, so a few hundred concurrent
 * and hanging requests cost little. Jetty comes with the testkit's Javalin dependency; the core API is used
 * directly because the fake must be able to drop a connection mid-stream, which a servlet cannot express.
 *
 * <pre>{@code
 * try (FakeOpenAi openAi = FakeOpenAi.start()) {
 *     openAi.enqueue(Behavior.status(503));          // the next request fails, later ones succeed
 *     client.baseUrl(openAi.baseUrl() + "/v1") ...
 * }
 * }</pre>
 */
public final class FakeOpenAi implements AutoCloseable {

    /** Older recorded requests are dropped past this many, so a benchmark cannot exhaust the heap. */
    public static final int DEFAULT_MAX_RECORDED_REQUESTS = 10_000;

    /** The admin key the organization Usage and Costs APIs accept unless the builder names another. */
    public static final String DEFAULT_ADMIN_KEY = "sk-admin-fake-upstream";

    private final Server server;
    private final String baseUrl;
    private final Duration latency;
    private final double failureRate;
    private final SplittableRandom failureRandom;
    private final Duration streamChunkDelay;
    private final int maxRecordedRequests;
    private final ConcurrentLinkedQueue<Behavior> queue = new ConcurrentLinkedQueue<>();
    private final ArrayDeque<RecordedRequest> recorded = new ArrayDeque<>();
    private final AtomicInteger requestCount = new AtomicInteger();
    private final CountDownLatch closed = new CountDownLatch(1);
    private final UpstreamLedger upstreamLedger = new UpstreamLedger(FakeOpenAi::nowEpochS);
    private final String adminKey;
    private final java.util.Set<String> organizationKeys;
    private final FakeBatches batches;

    private FakeOpenAi(Builder b) {
        this.latency = b.latency;
        this.failureRate = b.failureRate;
        this.failureRandom = new SplittableRandom(b.failureSeed);
        this.streamChunkDelay = b.streamChunkDelay;
        this.maxRecordedRequests = b.maxRecordedRequests;
        this.adminKey = b.adminKey;
        this.organizationKeys = java.util.Set.copyOf(b.organizationKeys);
        this.batches = new FakeBatches(System::currentTimeMillis, b.batchStep, this::recordBatchLine);
        // Load the o200k vocabulary now, not on the first request, where it would cost a client with a short
        // timeout most of a second.
        FakeCall.countTokens("warm up");

        QueuedThreadPool threads = new QueuedThreadPool(64, 4);
        threads.setName("fake-openai");
        threads.setStopTimeout(200);
        threads.setVirtualThreadsExecutor(Executors.newVirtualThreadPerTaskExecutor());
        this.server = new Server(threads);
        HttpConfiguration http = new HttpConfiguration();
        http.setSendServerVersion(false);
        http.setSendDateHeader(true);
        ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(http));
        connector.setHost("127.0.0.1");
        connector.setPort(b.port);
        connector.setIdleTimeout(Duration.ofMinutes(5).toMillis());
        connector.setAcceptQueueSize(1024);
        server.addConnector(connector);
        server.setHandler(new FakeHandler());
        server.setStopTimeout(0);
        try {
            server.start();
        } catch (Exception e) {
            throw new IllegalStateException("fake OpenAI could not start on 127.0.0.1:" + b.port, e);
        }
        this.baseUrl = "http://127.0.0.1:" + connector.getLocalPort();
    }

    /** Starts on 127.0.0.1 on a free port with default behaviour. */
    public static FakeOpenAi start() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** {@code http://127.0.0.1:PORT}; the endpoints live under {@code /v1/...}. */
    public String baseUrl() {
        return baseUrl;
    }

    /** The behaviour for the next request not yet taken by an earlier enqueued behaviour (FIFO). */
    public void enqueue(Behavior behavior) {
        queue.add(Objects.requireNonNull(behavior, "behavior"));
    }

    /** The requests received so far, in arrival order (at most the last {@code maxRecordedRequests}). */
    public List<RecordedRequest> requests() {
        synchronized (recorded) {
            return List.copyOf(recorded);
        }
    }

    /** How many requests arrived since start or the last {@link #reset()}. */
    public int requestCount() {
        return requestCount.get();
    }

    /**
     * From now on the organization Usage and Costs APIs report with this drift ({@link Drift#NONE} to stop);
     * it applies to every later read, also of calls answered before.
     */
    public void drift(Drift drift) {
        upstreamLedger.drift(Objects.requireNonNull(drift, "drift"));
    }

    /** The admin key the organization Usage and Costs APIs accept. */
    public String adminKey() {
        return adminKey;
    }

    /** The next batch created ends {@code expired} instead of {@code completed}: every line in its error file. */
    public void expireNextBatch() {
        batches.endNextBatchAs(FakeBatches.Ending.EXPIRED);
    }

    /** Forgets enqueued behaviours, recorded requests, files, batches and the calls the Usage and Costs APIs report; ends any drift. */
    public void reset() {
        queue.clear();
        batches.clear();
        upstreamLedger.clear();
        upstreamLedger.drift(Drift.NONE);
        synchronized (recorded) {
            recorded.clear();
            requestCount.set(0);
        }
    }

    @Override
    public void close() {
        closed.countDown();
        try {
            server.stop();
        } catch (Exception e) {
            throw new IllegalStateException("fake OpenAI did not stop cleanly", e);
        }
    }

    /**
     * The usage the fake will report for this request body on this endpoint ({@code /v1/chat/completions},
     * {@code chat/completions}, {@code /v1/completions}, {@code /v1/embeddings}, {@code /v1/responses}).
     *
     * @throws IllegalArgumentException if the body is not one the fake would accept
     */
    public static Usage usageFor(String endpoint, String requestJson) {
        JsonNode body;
        try {
            body = OpenAiWire.JSON.readTree(requestJson);
        } catch (IOException e) {
            throw new IllegalArgumentException("request body is not JSON", e);
        }
        try {
            return FakeCall.parse(Endpoint.of(endpoint), body).usage();
        } catch (BadRequestException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    public static final class Builder {
        private int port;
        private Duration latency = Duration.ZERO;
        private double failureRate;
        private long failureSeed;
        private Duration streamChunkDelay = Duration.ZERO;
        private int maxRecordedRequests = DEFAULT_MAX_RECORDED_REQUESTS;
        private String adminKey = DEFAULT_ADMIN_KEY;
        private java.util.Set<String> organizationKeys = java.util.Set.of();
        private Duration batchStep = Duration.ofSeconds(1);

        private Builder() {
        }

        /**
         * The compressed clock of the Batch API: a batch is {@code validating} for one step, {@code in_progress} for
         * one more, then done; a cancel takes one step (default 1 s).
         */
        public Builder batchStep(Duration step) {
            if (step.isNegative()) {
                throw new IllegalArgumentException("batchStep must not be negative");
            }
            this.batchStep = step;
            return this;
        }

        /** The only key the organization Usage and Costs APIs accept (default {@value #DEFAULT_ADMIN_KEY}). */
        public Builder adminKey(String key) {
            if (key == null || key.isBlank()) {
                throw new IllegalArgumentException("adminKey must not be blank");
            }
            this.adminKey = key;
            return this;
        }

        /**
         * The organization's own API keys: only calls made with one of them appear in the Usage and Costs APIs
         * (a user's own key belongs to another organization). Empty (the default): every answered call counts.
         */
        public Builder organizationKeys(java.util.Collection<String> keys) {
            this.organizationKeys = java.util.Set.copyOf(keys);
            return this;
        }

        /** 0 (the default) picks a free port. */
        public Builder port(int port) {
            if (port < 0 || port > 65_535) {
                throw new IllegalArgumentException("port must be 0..65535, was " + port);
            }
            this.port = port;
            return this;
        }

        /** Added before the first byte of every successful answer. */
        public Builder latency(Duration latency) {
            if (latency.isNegative()) {
                throw new IllegalArgumentException("latency must not be negative");
            }
            this.latency = latency;
            return this;
        }

        /** This share of requests (0..1) without an enqueued behaviour or directive fails with 500; seeded, so repeatable. */
        public Builder failureRate(double rate, long seed) {
            if (!(rate >= 0 && rate <= 1)) {
                throw new IllegalArgumentException("failure rate must be within 0..1, was " + rate);
            }
            this.failureRate = rate;
            this.failureSeed = seed;
            return this;
        }

        /** Pause before each content chunk of a stream. */
        public Builder streamChunkDelay(Duration delay) {
            if (delay.isNegative()) {
                throw new IllegalArgumentException("stream chunk delay must not be negative");
            }
            this.streamChunkDelay = delay;
            return this;
        }

        /** Keep at most this many recorded requests (oldest dropped); {@link #requestCount()} still counts all. */
        public Builder maxRecordedRequests(int max) {
            if (max < 0) {
                throw new IllegalArgumentException("maxRecordedRequests must not be negative");
            }
            this.maxRecordedRequests = max;
            return this;
        }

        /** Starts the fake. */
        public FakeOpenAi build() {
            return new FakeOpenAi(this);
        }
    }

    // ------------------------------------------------------------------ serving

    private void record(RecordedRequest request) {
        synchronized (recorded) {
            requestCount.incrementAndGet();
            if (maxRecordedRequests == 0) {
                return;
            }
            if (recorded.size() == maxRecordedRequests) {
                recorded.removeFirst();
            }
            recorded.addLast(request);
        }
    }

    private boolean failsByChance() {
        if (failureRate <= 0) {
            return false;
        }
        synchronized (failureRandom) {
            return failureRandom.nextDouble() < failureRate;
        }
    }

    /** Waits, but returns at once when the fake closes, so close() never waits for a hang. */
    private void pause(Duration d) throws InterruptedException {
        if (!d.isZero()) {
            closed.await(d.toNanos(), TimeUnit.NANOSECONDS);
        }
    }

    private final class FakeHandler extends Handler.Abstract {
        @Override
        public boolean handle(Request request, Response response, Callback callback) throws Exception {
            Exchange ex = new Exchange(request, response, callback, System.nanoTime());
            try {
                serve(ex);
            } catch (BadRequestException e) {
                ex.sendJson(400, OpenAiWire.error(e.getMessage(), "invalid_request_error", e.param, e.code));
            } catch (Throwable t) {
                if (ex.committed) {
                    ex.abort();
                } else {
                    ex.sendJson(500, OpenAiWire.errorForStatus(500));
                }
            }
            return true;
        }
    }

    private void serve(Exchange ex) throws Exception {
        Request request = ex.request;
        String method = request.getMethod();
        String path = request.getHttpURI().getPath();
        byte[] bytes = FakeBatches.handles(path) ? bytesOf(Content.Source.asByteBuffer(request)) : null;
        String body = bytes != null ? new String(bytes, StandardCharsets.UTF_8) : Content.Source.asString(request, StandardCharsets.UTF_8);
        Map<String, String> headers = new LinkedHashMap<>();
        for (HttpField field : request.getHeaders()) {
            headers.merge(field.getName(), field.getValue(), (a, b) -> a + ", " + b);
        }
        if (bytes != null) {
            record(new RecordedRequest(method, path, headers, body, request.getConnectionMetaData().getId()));
            serveBatchApi(ex, method, path, bytes);
            return;
        }
        if (path.startsWith("/v1/organization/")) {
            // Admin reads are neither recorded nor steered by enqueued behaviours: those are for the proxied calls.
            String admin = request.getHeaders().get(HttpHeader.AUTHORIZATION);
            serveOrganization(ex, method, path, admin != null && admin.regionMatches(true, 0, "Bearer ", 0, 7)
                    ? admin.substring(7).trim() : "");
            return;
        }
        record(new RecordedRequest(method, path, headers, body, request.getConnectionMetaData().getId()));

        Behavior enqueued = queue.poll();
        if (enqueued instanceof Behavior.Status s) {
            ex.sendJson(s.code(), OpenAiWire.errorForStatus(s.code()));
            return;
        }
        if (enqueued instanceof Behavior.Hang h) {
            hang(ex, h.max());
            return;
        }

        String auth = request.getHeaders().get(HttpHeader.AUTHORIZATION);
        if (auth == null || !auth.regionMatches(true, 0, "Bearer ", 0, 7) || auth.substring(7).isBlank()) {
            ex.sendJson(401, OpenAiWire.error("You didn't provide an API key. You need to provide your API key in an "
                    + "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error", null, null));
            return;
        }

        if ("GET".equals(method) && path.startsWith("/v1/models")) {
            pause(latency.plus(enqueued instanceof Behavior.Latency l ? l.delay() : Duration.ZERO));
            if (path.equals("/v1/models") || path.equals("/v1/models/")) {
                ex.sendJson(200, OpenAiWire.models());
            } else {
                String id = path.substring("/v1/models/".length());
                if (OpenAiWire.MODELS.contains(id)) {
                    ex.sendJson(200, OpenAiWire.model(id));
                } else {
                    ex.sendJson(404, OpenAiWire.error("The model '" + id + "' does not exist", "invalid_request_error", "model", "model_not_found"));
                }
            }
            return;
        }
        Endpoint endpoint = Endpoint.forPath(path);
        if (endpoint == null || !"POST".equals(method)) {
            ex.sendJson(404, OpenAiWire.error("Invalid URL (" + method + " " + path + ")", "invalid_request_error", null, null));
            return;
        }
        if (endpoint.multipart()) {
            serveUpload(ex, endpoint, request.getHeaders().get(HttpHeader.CONTENT_TYPE), body, enqueued);
            return;
        }
        JsonNode json;
        try {
            json = body.isBlank() ? null : OpenAiWire.JSON.readTree(body);
        } catch (IOException e) {
            json = null;
        }
        if (json == null || !json.isObject()) {
            ex.sendJson(400, OpenAiWire.error("We could not parse the JSON body of your request. (HINT: This likely means you "
                    + "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
                    + "was not valid JSON.)", "invalid_request_error", null, null));
            return;
        }
        FakeCall call = FakeCall.parse(endpoint, json);

        Duration extraLatency = Duration.ZERO;
        Integer cutAfter = null;
        Duration usageDelay = Duration.ZERO;
        if (enqueued == null) {
            FakeCall.Directives d = call.directives();
            if (d.status() != null) {
                ex.sendJson(d.status(), OpenAiWire.errorForStatus(d.status()));
                return;
            }
            if (d.hang() != null) {
                hang(ex, d.hang());
                return;
            }
            if (failsByChance()) {
                ex.sendJson(500, OpenAiWire.errorForStatus(500));
                return;
            }
            if (d.latency() != null) {
                extraLatency = d.latency();
            }
            cutAfter = d.cutAfter();
        } else if (enqueued instanceof Behavior.Latency l) {
            extraLatency = l.delay();
        } else if (enqueued instanceof Behavior.CutStreamAfter c) {
            cutAfter = c.chunks();
        } else if (enqueued instanceof Behavior.UsageAfter u) {
            usageDelay = u.delay();
        }
        pause(latency.plus(extraLatency));
        String apiKey = auth.substring(7).trim();
        String project = request.getHeaders().get("OpenAI-Project");
        if (cutAfter == null) {
            recordAnswered(call, apiKey, project);
        }

        switch (endpoint) {
            case CHAT_COMPLETIONS -> {
                if (call.stream()) {
                    streamChat(ex, call, cutAfter, usageDelay);
                } else if (cutAfter != null) {
                    ex.commitAndAbort();
                } else {
                    ex.sendJson(200, OpenAiWire.chatCompletion(OpenAiWire.idFor(endpoint), nowEpochS(), call));
                }
            }
            case COMPLETIONS -> {
                if (call.stream()) {
                    streamCompletion(ex, call, cutAfter, usageDelay);
                } else if (cutAfter != null) {
                    ex.commitAndAbort();
                } else {
                    ex.sendJson(200, OpenAiWire.completion(OpenAiWire.idFor(endpoint), nowEpochS(), call));
                }
            }
            case EMBEDDINGS -> {
                ObjectNode answer = OpenAiWire.embeddings(call, json);
                if (cutAfter != null) {
                    ex.commitAndAbort();
                } else {
                    ex.sendJson(200, answer);
                }
            }
            case AUDIO_SPEECH -> {
                if (cutAfter != null) {
                    ex.commitAndAbort();
                } else {
                    recordMedia(apiKey, project, "audio_speeches", call.answeredModel(), null, null, 0,
                            call.usage().promptTokens(), 0, call.usage(), 0);
                    ex.sendBytes(200, "audio/mpeg", speechBytes(call));
                }
            }
            case IMAGES_GENERATIONS -> {
                if (cutAfter != null) {
                    ex.commitAndAbort();
                } else {
                    ObjectNode answer = OpenAiWire.images(nowEpochS(), call, json);
                    recordImages(apiKey, project, call.answeredModel(), "image.generation", answer);
                    ex.sendJson(200, answer);
                }
            }
            case MODERATIONS -> {
                ObjectNode answer = OpenAiWire.moderation(OpenAiWire.idFor(endpoint), call, json);
                if (cutAfter != null) {
                    ex.commitAndAbort();
                } else {
                    recordMedia(apiKey, project, "moderations", call.answeredModel(), null, null, 0, 0, 0, call.usage(), 0);
                    ex.sendJson(200, answer);
                }
            }
            case RESPONSES -> {
                String id = OpenAiWire.idFor(endpoint);
                String itemId = "msg_" + id.substring("resp_".length());
                if (call.stream()) {
                    streamResponse(ex, call, json, id, itemId, cutAfter, usageDelay);
                } else if (cutAfter != null) {
                    ex.commitAndAbort();
                } else {
                    ex.sendJson(200, OpenAiWire.response(id, itemId, nowEpochS(), call, json, true));
                }
            }
            default -> throw new IllegalStateException(endpoint.toString());
        }
    }

    /**
     * A multipart upload ({@link FakeUploads}): answered with its usage; a transcription or translation is counted
     * in {@code /v1/organization/usage/audio_transcriptions} by its seconds, an edit in {@code /usage/images}, and
     * both in the Costs API.
     */
    private void serveUpload(Exchange ex, Endpoint endpoint, String contentType, String body, Behavior enqueued)
            throws InterruptedException {
        FakeUploads.Upload upload = FakeUploads.parse(contentType, body);
        pause(latency.plus(enqueued instanceof Behavior.Latency l ? l.delay() : Duration.ZERO));
        String apiKey = ex.request.getHeaders().get(HttpHeader.AUTHORIZATION).substring(7).trim();
        String project = ex.request.getHeaders().get("OpenAI-Project");
        String model = upload.fields().get("model");
        if (endpoint == Endpoint.IMAGES_EDITS) {
            ObjectNode answer = FakeUploads.imageEdit(upload, nowEpochS());
            recordImages(apiKey, project, model, "image.edit", answer);
            ex.sendJson(200, answer);
            return;
        }
        ObjectNode answer = FakeUploads.transcription(upload, endpoint == Endpoint.AUDIO_TRANSLATIONS);
        JsonNode u = answer.path("usage");
        boolean tokens = "tokens".equals(u.path("type").asText());
        long audioTokens = tokens ? u.path("input_token_details").path("audio_tokens").asLong() : 0;
        Usage usage = tokens ? new Usage(u.path("input_tokens").asLong(), 0, u.path("output_tokens").asLong(), 0) : new Usage(0, 0, 0, 0);
        recordMedia(apiKey, project, "audio_transcriptions", model, null, null, 0, 0,
                FakeUploads.seconds(upload).setScale(0, java.math.RoundingMode.HALF_UP).longValueExact(), usage, audioTokens);
        ex.sendJson(200, answer);
    }

    /** An images answer (generation or edit): its image count, size and image-token usage object. */
    private void recordImages(String apiKey, String project, String model, String source, ObjectNode answer) {
        JsonNode u = answer.path("usage");
        long imageTokens = u.path("input_tokens_details").path("image_tokens").asLong(0);
        recordMedia(apiKey, project, "images", model, source, answer.path("size").asText(null), answer.path("data").size(), 0, 0,
                new Usage(u.path("input_tokens").asLong(), 0, u.path("output_tokens").asLong(), 0), imageTokens);
    }

    /** A media call answered on one of the organization's keys, for the Usage and Costs APIs. */
    private void recordMedia(String apiKey, String project, String kind, String model, String source, String size, long images,
                             long characters, long seconds, Usage usage, long nonTextInputTokens) {
        if (!organizationKeys.isEmpty() && !organizationKeys.contains(apiKey)) {
            return;
        }
        upstreamLedger.recordMedia(new UpstreamLedger.MediaCall(nowEpochS(), apiKey,
                project == null || project.isBlank() ? UpstreamLedger.DEFAULT_PROJECT_ID : project, kind, model, source, size,
                images, characters, seconds, usage, nonTextInputTokens));
    }

    /** The Usage and Costs APIs count a call once its answer is fully sent or about to be (not cut, not failed). */
    private void recordAnswered(FakeCall call, String apiKey, String project) {
        if (!organizationKeys.isEmpty() && !organizationKeys.contains(apiKey)) {
            return;
        }
        // Images, speech and moderations have usage endpoints of their own at OpenAI (/usage/images,
        // /usage/audio_speeches, /usage/moderations): recorded as media calls where they are answered, not here.
        if (call.endpoint() == Endpoint.IMAGES_GENERATIONS || call.endpoint() == Endpoint.MODERATIONS
                || call.endpoint() == Endpoint.AUDIO_SPEECH) {
            return;
        }
        upstreamLedger.record(new UpstreamLedger.Call(nowEpochS(), apiKey,
                project == null || project.isBlank() ? UpstreamLedger.DEFAULT_PROJECT_ID : project,
                call.answeredModel(), call.serviceTier() == null ? "default" : call.serviceTier(),
                call.endpoint() == Endpoint.EMBEDDINGS, call.usage()));
    }

    private void serveBatchApi(Exchange ex, String method, String path, byte[] body) {
        String auth = ex.request.getHeaders().get(HttpHeader.AUTHORIZATION);
        if (auth == null || !auth.regionMatches(true, 0, "Bearer ", 0, 7) || auth.substring(7).isBlank()) {
            ex.sendJson(401, OpenAiWire.error("You didn't provide an API key.", "invalid_request_error", null, null));
            return;
        }
        String project = ex.request.getHeaders().get("OpenAI-Project");
        FakeBatches.Answer a = batches.serve(method, path, ex.request.getHeaders().get(HttpHeader.CONTENT_TYPE), body,
                ex.request.getHttpURI().getQuery(), auth.substring(7).trim(),
                project == null || project.isBlank() ? UpstreamLedger.DEFAULT_PROJECT_ID : project);
        if (a.json() != null) {
            ex.sendJson(a.status(), a.json());
        } else {
            ex.sendBytes(a.status(), "application/octet-stream", a.bytes());
        }
    }

    private static byte[] bytesOf(ByteBuffer buffer) {
        byte[] out = new byte[buffer.remaining()];
        buffer.get(out);
        return out;
    }

    /** A Batch API line answered: counted at the batch tier with {@code batch = true}. */
    private void recordBatchLine(String apiKey, String projectId, FakeCall call, long epochS) {
        if (!organizationKeys.isEmpty() && !organizationKeys.contains(apiKey)) {
            return;
        }
        upstreamLedger.record(new UpstreamLedger.Call(epochS, apiKey, projectId, call.answeredModel(), "batch",
                call.endpoint() == Endpoint.EMBEDDINGS, call.usage(), true));
    }

    private void serveOrganization(Exchange ex, String method, String path, String key) {
        if (!adminKey.equals(key)) {
            ex.sendJson(401, OpenAiWire.error("Incorrect API key provided. The organization usage and costs endpoints need an admin key.",
                    "invalid_request_error", null, "invalid_api_key"));
            return;
        }
        if (!"GET".equals(method)) {
            ex.sendJson(405, OpenAiWire.error("Method not allowed (" + method + " " + path + ")", "invalid_request_error", null, null));
            return;
        }
        String query = ex.request.getHttpURI().getQuery();
        switch (path) {
            case "/v1/organization/usage/completions" -> ex.sendJson(200, upstreamLedger.usagePage("completions", query));
            case "/v1/organization/usage/embeddings" -> ex.sendJson(200, upstreamLedger.usagePage("embeddings", query));
            case "/v1/organization/usage/images", "/v1/organization/usage/audio_speeches",
                 "/v1/organization/usage/audio_transcriptions", "/v1/organization/usage/moderations" ->
                    ex.sendJson(200, upstreamLedger.mediaUsagePage(path.substring(path.lastIndexOf('/') + 1), query));
            case "/v1/organization/costs" -> ex.sendJson(200, upstreamLedger.costsPage(query));
            default -> ex.sendJson(404, OpenAiWire.error("Invalid URL (" + method + " " + path + ")", "invalid_request_error", null, null));
        }
    }

    /**
     * The fake's "audio" for a speech request: an MPEG frame header then 16 bytes per input code point, so its length
     * is predictable ({@code 4 + 16 × code points}) and it is not JSON.
     */
    static byte[] speechBytes(FakeCall call) {
        byte[] out = new byte[4 + 16 * (int) Math.min(call.usage().promptTokens(), 1 << 20)];
        out[0] = (byte) 0xFF;
        out[1] = (byte) 0xFB;
        out[2] = (byte) 0x90;
        out[3] = 0x64;
        return out;
    }

    private static long nowEpochS() {
        return System.currentTimeMillis() / 1000;
    }

    private void hang(Exchange ex, Duration max) throws InterruptedException {
        pause(max);
        ex.abort();
    }

    private void streamChat(Exchange ex, FakeCall call, Integer cutAfter, Duration usageDelay) throws IOException, InterruptedException {
        String id = OpenAiWire.idFor(Endpoint.CHAT_COMPLETIONS);
        long created = nowEpochS();
        ex.startStream();
        ex.data(OpenAiWire.chatChunk(id, created, call, OpenAiWire.roleDelta(), null));
        List<String> words = call.replyWords();
        for (int i = 0; i < words.size(); i++) {
            if (cutAfter != null && i >= cutAfter) {
                ex.abort();
                return;
            }
            pause(streamChunkDelay);
            ex.data(OpenAiWire.chatChunk(id, created, call, OpenAiWire.contentDelta(words.get(i)), null));
        }
        if (cutAfter != null) {
            ex.abort();
            return;
        }
        ex.data(OpenAiWire.chatChunk(id, created, call, OpenAiWire.emptyDelta(), OpenAiWire.finishReason(call)));
        pause(usageDelay);
        if (call.includeUsage()) {
            ex.data(OpenAiWire.usageChunk(id, created, call));
        }
        ex.done();
    }

    private void streamCompletion(Exchange ex, FakeCall call, Integer cutAfter, Duration usageDelay) throws IOException, InterruptedException {
        String id = OpenAiWire.idFor(Endpoint.COMPLETIONS);
        long created = nowEpochS();
        ex.startStream();
        List<String> words = call.replyWords();
        for (int i = 0; i < words.size(); i++) {
            if (cutAfter != null && i >= cutAfter) {
                ex.abort();
                return;
            }
            if (i > 0) {
                pause(streamChunkDelay);
            }
            ex.data(OpenAiWire.completionChunk(id, created, call, words.get(i), null));
        }
        if (cutAfter != null) {
            ex.abort();
            return;
        }
        ex.data(OpenAiWire.completionChunk(id, created, call, "", OpenAiWire.finishReason(call)));
        pause(usageDelay);
        if (call.includeUsage()) {
            ex.data(OpenAiWire.usageChunk(id, created, call));
        }
        ex.done();
    }

    private void streamResponse(Exchange ex, FakeCall call, JsonNode body, String id, String itemId, Integer cutAfter,
                                Duration usageDelay)
            throws IOException, InterruptedException {
        long created = nowEpochS();
        int[] seq = {0};
        ex.startStream();
        ObjectNode e = event("response.created", seq);
        e.set("response", OpenAiWire.response(id, itemId, created, call, body, false));
        ex.event(e);
        e = event("response.in_progress", seq);
        e.set("response", OpenAiWire.response(id, itemId, created, call, body, false));
        ex.event(e);
        e = event("response.output_item.added", seq);
        e.put("output_index", 0);
        e.set("item", OpenAiWire.responseMessage(itemId, "", false, false));
        ex.event(e);
        e = event("response.content_part.added", seq);
        e.put("item_id", itemId);
        e.put("output_index", 0);
        e.put("content_index", 0);
        e.set("part", OpenAiWire.outputText(""));
        ex.event(e);
        List<String> words = call.replyWords();
        for (int i = 0; i < words.size(); i++) {
            if (cutAfter != null && i >= cutAfter) {
                ex.abort();
                return;
            }
            pause(streamChunkDelay);
            e = event("response.output_text.delta", seq);
            e.put("item_id", itemId);
            e.put("output_index", 0);
            e.put("content_index", 0);
            e.put("delta", words.get(i));
            e.putArray("logprobs");
            ex.event(e);
        }
        if (cutAfter != null) {
            ex.abort();
            return;
        }
        String text = call.replyText();
        e = event("response.output_text.done", seq);
        e.put("item_id", itemId);
        e.put("output_index", 0);
        e.put("content_index", 0);
        e.put("text", text);
        e.putArray("logprobs");
        ex.event(e);
        e = event("response.content_part.done", seq);
        e.put("item_id", itemId);
        e.put("output_index", 0);
        e.put("content_index", 0);
        e.set("part", OpenAiWire.outputText(text));
        ex.event(e);
        e = event("response.output_item.done", seq);
        e.put("output_index", 0);
        e.set("item", OpenAiWire.responseMessage(itemId, text, true, call.cappedByMaxTokens()));
        ex.event(e);
        pause(usageDelay);
        // OpenAI ends with response.incomplete (usage included) when max_output_tokens cut the reply short.
        e = event(call.cappedByMaxTokens() ? "response.incomplete" : "response.completed", seq);
        e.set("response", OpenAiWire.response(id, itemId, created, call, body, true));
        ex.lastEvent(e);
    }

    private static ObjectNode event(String type, int[] seq) {
        ObjectNode e = OpenAiWire.objectNode();
        e.put("type", type);
        e.put("sequence_number", seq[0]++);
        return e;
    }

    /** One request/response pair on Jetty's core API, written with blocking writes on a virtual thread. */
    private static final class Exchange {
        private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);

        final Request request;
        final Response response;
        final Callback callback;
        final long startNanos;
        final String requestId = OpenAiWire.requestId();
        boolean committed;

        Exchange(Request request, Response response, Callback callback, long startNanos) {
            this.request = request;
            this.response = response;
            this.callback = callback;
            this.startNanos = startNanos;
        }

        private void headers(int status, String contentType) {
            response.setStatus(status);
            var h = response.getHeaders();
            h.put(HttpHeader.CONTENT_TYPE, contentType);
            h.put("x-request-id", requestId);
            h.put("openai-processing-ms", Long.toString((System.nanoTime() - startNanos) / 1_000_000));
            h.put("openai-version", "2020-10-01");
            h.put("openai-organization", "tokenmeter-fake");
            h.put("x-ratelimit-limit-requests", "30000");
            h.put("x-ratelimit-limit-tokens", "150000000");
            h.put("x-ratelimit-remaining-requests", "29999");
            h.put("x-ratelimit-remaining-tokens", "149999000");
            h.put("x-ratelimit-reset-requests", "2ms");
            h.put("x-ratelimit-reset-tokens", "0s");
            committed = true;
        }

        void sendBytes(int status, String contentType, byte[] bytes) {
            headers(status, contentType);
            response.getHeaders().put(HttpHeader.CONTENT_LENGTH, Integer.toString(bytes.length));
            response.write(true, ByteBuffer.wrap(bytes), callback);
        }

        void sendJson(int status, ObjectNode body) {
            byte[] bytes = OpenAiWire.bytes(body);
            headers(status, "application/json");
            response.getHeaders().put(HttpHeader.CONTENT_LENGTH, Integer.toString(bytes.length));
            response.write(true, ByteBuffer.wrap(bytes), callback);
        }

        void startStream() {
            headers(200, "text/event-stream; charset=utf-8");
            response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
        }

        /** {@code data: {...}\n\n}, flushed at once. */
        void data(ObjectNode chunk) throws IOException {
            write(sse(null, chunk), false);
        }

        /** {@code event: type\ndata: {...}\n\n} as the Responses API streams. */
        void event(ObjectNode event) throws IOException {
            write(sse(event.get("type").asText(), event), false);
        }

        void lastEvent(ObjectNode event) {
            response.write(true, ByteBuffer.wrap(sse(event.get("type").asText(), event)), callback);
        }

        void done() {
            response.write(true, ByteBuffer.wrap(DONE), callback);
        }

        private static byte[] sse(String eventType, ObjectNode json) {
            byte[] payload = OpenAiWire.bytes(json);
            byte[] head = ((eventType == null ? "" : "event: " + eventType + "\n") + "data: ").getBytes(StandardCharsets.UTF_8);
            byte[] out = new byte[head.length + payload.length + 2];
            System.arraycopy(head, 0, out, 0, head.length);
            System.arraycopy(payload, 0, out, head.length, payload.length);
            out[out.length - 2] = '\n';
            out[out.length - 1] = '\n';
            return out;
        }

        private void write(byte[] bytes, boolean last) throws IOException {
            try (Blocker.Callback blocker = Blocker.callback()) {
                response.write(last, ByteBuffer.wrap(bytes), blocker);
                blocker.block();
            }
        }

        /** Headers go out, then the connection drops: the client sees a truncated body. */
        void commitAndAbort() throws IOException {
            headers(200, "application/json");
            write(new byte[0], false);
            abort();
        }

        /** Drops the connection: no terminating chunk, no more bytes. */
        void abort() {
            committed = true;
            request.getConnectionMetaData().getConnection().getEndPoint().close();
            callback.failed(new EofException("connection dropped by the fake OpenAI upstream"));
        }
    }

    @Override
    public String toString() {
        return "FakeOpenAi[" + baseUrl + "]";
    }
}
