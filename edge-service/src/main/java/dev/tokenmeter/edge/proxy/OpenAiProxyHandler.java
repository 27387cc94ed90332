package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.auth.BearerToken;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.call.QuotaGate;
import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.http.QuotaHeaders;
import dev.tokenmeter.edge.http.Rejections;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.Route;
import dev.tokenmeter.edge.publish.EventSink;
import dev.tokenmeter.edge.tokens.RequestEstimate;
import dev.tokenmeter.edge.tokens.StreamUsageTracker;
import dev.tokenmeter.edge.tokens.TokenCounter;
import dev.tokenmeter.edge.tokens.UsageParser;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.log.LogSafe;
import dev.tokenmeter.events.validate.UsageEventBounds;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The OpenAI-compatible proxy path: authenticate → read and validate the body → price and estimate → reserve in
 * the quota engine → forward to the upstream with the chosen key → stream or copy the answer back → settle (or
 * release) → publish exactly one {@link UsageEvent}.
 *
 * <p>Bodies pass through byte for byte, except that a streamed chat or completions request gets
 * {@code stream_options.include_usage=true} so its usage arrives in the last chunk. The caller's {@code tm_} key
 * never goes upstream; neither keys nor prompt text are ever logged.
 *
 * <p>Every call by an authenticated caller produces one event (SUCCEEDED, FAILED, CANCELLED or REJECTED); a call
 * without a valid key produces none, since there is nobody to attribute it to (it is counted in the metrics).
 */
public final class OpenAiProxyHandler {

    public static final List<String> ENDPOINTS =
            List.of("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses");

    private static final Logger LOG = LoggerFactory.getLogger(OpenAiProxyHandler.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Upstream response headers worth passing on; the upstream's own rate-limit headers are the service's, not the caller's. */
    private static final Set<String> PASSED_RESPONSE_HEADERS =
            Set.of("x-request-id", "openai-processing-ms", "openai-version", "openai-model", "x-should-retry", "retry-after");
    /** Request headers passed upstream besides Content-Type/Accept; never Authorization or OpenAI-Organization. */
    private static final Set<String> PASSED_REQUEST_HEADERS = Set.of("openai-beta", "idempotency-key", "x-stainless-retry-count");
    private static final int MAX_ERROR_BODY_BYTES = 1 << 20;

    private final Authenticator authenticator;
    private final PriceBook priceBook;
    private final TokenCounter tokenCounter;
    private final QuotaGate quota;
    private final UpstreamKeys keys;
    private final EventSink sink;
    private final EdgeMetrics metrics;
    private final Upstream upstream;
    private final long maxBodyBytes;
    private final long defaultMaxCompletionTokens;
    private final String edgeInstance;
    private final Duration drainTimeout;
    private final Clock clock;
    /** Streams being read on after their caller left (see {@link #drain}). */
    private final Set<Drain> drains = ConcurrentHashMap.newKeySet();
    /** Calls in {@link #handle}, settle included (it runs after the answer is out). */
    private final AtomicInteger underWay = new AtomicInteger();

    private OpenAiProxyHandler(Builder b) {
        this.authenticator = Objects.requireNonNull(b.authenticator, "authenticator");
        this.priceBook = Objects.requireNonNull(b.priceBook, "priceBook");
        this.tokenCounter = Objects.requireNonNull(b.tokenCounter, "tokenCounter");
        this.quota = Objects.requireNonNull(b.quota, "quota");
        this.keys = Objects.requireNonNull(b.keys, "keys");
        this.sink = Objects.requireNonNull(b.sink, "sink");
        this.metrics = Objects.requireNonNull(b.metrics, "metrics");
        this.upstream = Objects.requireNonNull(b.upstream, "upstream");
        this.maxBodyBytes = b.maxBodyBytes;
        this.defaultMaxCompletionTokens = b.defaultMaxCompletionTokens;
        this.edgeInstance = b.edgeInstance;
        this.drainTimeout = Objects.requireNonNull(b.drainTimeout, "drainTimeout");
        this.clock = b.clock;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The state of one call, from which its single event is built. */
    private static final class Call {
        final String eventId = UUID.randomUUID().toString();
        final String endpoint;
        final Instant occurredAt;
        final long startNanos;
        Caller caller;
        String model = "unknown";
        boolean streamed;
        KeySource keySource = KeySource.NONE;
        String reservationId;
        boolean reservationOpen;
        String upstreamRequestId;
        ModelPrice price;
        final Map<String, String> attributes = new HashMap<>();
        boolean published;

        Call(String endpoint, Instant occurredAt, long startNanos) {
            this.endpoint = endpoint;
            this.occurredAt = occurredAt;
            this.startNanos = startNanos;
        }
    }

    public void handle(ProxyExchange ctx, String endpoint) {
        underWay.incrementAndGet();
        try {
            handleCall(ctx, endpoint);
        } finally {
            underWay.decrementAndGet();
        }
    }

    /**
     * Waits until no call is in the proxy, its settle included: the server counts a call done once its answer is
     * out, but its reservation is settled just after that. At shutdown, before the quota engine goes away.
     *
     * @return true when idle, false when {@code timeout} passed first
     */
    public boolean awaitIdle(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (underWay.get() > 0) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            LockSupport.parkNanos(1_000_000);
        }
        return true;
    }

    private void handleCall(ProxyExchange ctx, String endpoint) {
        Call call = new Call(endpoint, clock.instant(), System.nanoTime());
        try {
            proxy(ctx, call);
        } catch (SpoolFullRuntimeException e) {
            releaseQuietly(call);
            metrics.request(endpoint, "failed");
            if (!ctx.committed()) {
                ctx.header(QuotaHeaders.EVENT_ID, null); // the spool refused the event: there is none to name
                respondError(ctx, OpenAiError.spoolFull());
            }
        } catch (RuntimeException e) {
            // Never leave a call unbilled or a reservation dangling because of a bug on our side.
            LOG.error("call {} failed inside the edge: {}", call.eventId, e.toString());
            if (call.reservationOpen) {
                releaseQuietly(call);
            }
            if (call.caller != null && !call.published) {
                publish(call, Outcome.FAILED, 500, TokenUsage.NONE, 0, UsageSource.REPORTED);
            }
            if (!ctx.committed()) {
                respondError(ctx, OpenAiError.internal("The edge failed to handle this request."));
            }
            metrics.request(endpoint, "failed");
        }
    }

    private void proxy(ProxyExchange ctx, Call call) {
        String presented = BearerToken.from(ctx.requestHeader("Authorization"));
        call.caller = presented == null ? null : authenticator.authenticate(presented).orElse(null);
        if (call.caller == null) {
            metrics.request(call.endpoint, "unauthenticated");
            respondError(ctx, OpenAiError.invalidApiKey(presented == null
                    ? "You didn't provide an API key. Provide it as 'Authorization: Bearer tm_...'."
                    : "Incorrect API key provided: " + ApiKeys.redact(presented) + "."));
            return;
        }
        if (!call.caller.active()) {
            // Before any other work: no body read, no event, no Redis (issue 14, finding 6).
            metrics.request(call.endpoint, "account_disabled");
            respondError(ctx, OpenAiError.accountDisabled());
            return;
        }
        // The one event of this call carries this id: callers and reconciliation can match answers to events.
        ctx.header(QuotaHeaders.EVENT_ID, call.eventId);

        byte[] body;
        try {
            body = readBounded(ctx, maxBodyBytes);
        } catch (BodyTooLargeException e) {
            reject(ctx, call, OpenAiError.bodyTooLarge(maxBodyBytes), "body_too_large");
            return;
        } catch (IOException e) {
            reject(ctx, call, OpenAiError.invalidRequest("The request body could not be read.", null), "body_unreadable");
            return;
        }

        JsonNode tree;
        try {
            tree = JSON.readTree(body);
        } catch (IOException e) {
            tree = null;
        }
        if (tree == null || !tree.isObject()) {
            reject(ctx, call, OpenAiError.invalidRequest("We could not parse the JSON body of your request. The body must be"
                    + " a JSON object; see https://platform.openai.com/docs/api-reference.", null), "malformed_json");
            return;
        }
        JsonNode modelNode = tree.get("model");
        if (modelNode == null || !modelNode.isTextual() || modelNode.asText().isBlank()) {
            reject(ctx, call, OpenAiError.invalidRequest("You must provide a model parameter.", "model"), "missing_model");
            return;
        }
        String modelProblem = UsageEventBounds.modelProblem("model", modelNode.asText());
        if (modelProblem != null) {
            refuse(ctx, call, OpenAiError.invalidRequest(modelProblem, "model"));
            return;
        }
        String paramProblem = parameterProblem(tree);
        if (paramProblem != null) {
            refuse(ctx, call, OpenAiError.invalidRequest(paramProblem, paramProblem.substring(0, paramProblem.indexOf(' '))));
            return;
        }
        call.model = modelNode.asText();
        call.streamed = tree.path("stream").asBoolean(false) && !call.endpoint.equals("/v1/embeddings");

        ModelPrice price = priceBook.priceAt(call.model, call.occurredAt).orElse(null);
        if (price == null) {
            reject(ctx, call, OpenAiError.modelNotFound(call.model), "model_not_found");
            return;
        }
        call.price = price;
        RequestEstimate estimate = RequestEstimate.of(call.endpoint, call.model, tree, tokenCounter, defaultMaxCompletionTokens);
        long estimatedCost = price.costNanoUsd(new TokenUsage(estimate.promptTokens(), 0, estimate.maxCompletionTokens(), 0));

        if (!sink.isReady()) {
            // Without a place for the event the call could not be billed: fail closed before spending anything.
            ctx.header(QuotaHeaders.EVENT_ID, null);
            metrics.request(call.endpoint, "rejected");
            respondError(ctx, OpenAiError.eventsUnavailable());
            return;
        }

        Decision decision;
        long decisionStart = System.nanoTime();
        try {
            decision = quota.reserve(call.caller.userId(), call.caller.apiKeyId(), call.model, estimatedCost, estimate.totalTokens(),
                    call.eventId);
        } catch (RuntimeException e) {
            LOG.warn("quota decision failed for call {}: {}", call.eventId, e.toString());
            decision = QuotaGate.unavailable(Duration.ofSeconds(1));
        } finally {
            metrics.decision(Duration.ofNanos(System.nanoTime() - decisionStart));
        }
        QuotaHeaders.set(ctx::header, decision);
        if (!decision.admitted()) {
            call.attributes.put("reject_reason", String.valueOf(decision.rejectReason()));
            reject(ctx, call, Rejections.of(decision), null);
            return;
        }
        if (QuotaGate.failOpen(decision)) {
            metrics.failOpenAdmission();
            call.attributes.put("fail_open", "true");
        }
        call.reservationId = decision.reservationId();
        call.reservationOpen = decision.reservationId() != null;

        String upstreamKey;
        if (decision.route() == Route.PERSONAL_KEY) {
            call.keySource = KeySource.PERSONAL_KEY;
            upstreamKey = keys.personalKey(call.caller.userId()).orElse(null);
        } else {
            call.keySource = KeySource.SERVICE_CREDIT;
            upstreamKey = keys.serviceKey();
        }
        if (upstreamKey == null || upstreamKey.isEmpty()) {
            releaseQuietly(call);
            fail(ctx, call, OpenAiError.internal("No upstream key is available for this call."), "no_upstream_key");
            return;
        }

        byte[] forwardBody = call.streamed ? withIncludeUsage(call.endpoint, (ObjectNode) tree, body) : body;
        Map<String, String> headers = new LinkedHashMap<>(8);
        headers.put("Accept", call.streamed ? "text/event-stream" : "application/json");
        headers.put("Authorization", "Bearer " + upstreamKey);
        for (String h : PASSED_REQUEST_HEADERS) {
            String v = ctx.requestHeader(h);
            if (v != null) {
                headers.put(h, v);
            }
        }

        Upstream.Answer response;
        long upstreamStart = System.nanoTime();
        try {
            response = upstream.post(call.endpoint, headers, "application/json", forwardBody);
        } catch (Upstream.UpstreamTimeoutException e) {
            metrics.upstream(Duration.ofNanos(System.nanoTime() - upstreamStart));
            releaseQuietly(call);
            fail(ctx, call, OpenAiError.upstreamTimeout(upstream.idleTimeout()), "upstream_timeout");
            return;
        } catch (IOException e) {
            releaseQuietly(call);
            fail(ctx, call, OpenAiError.upstreamUnreachable(), "upstream_unreachable");
            return;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            releaseQuietly(call);
            fail(ctx, call, OpenAiError.upstreamUnreachable(), "interrupted");
            return;
        }
        metrics.upstream(Duration.ofNanos(System.nanoTime() - upstreamStart));
        String upstreamRequestId = response.header("x-request-id");
        // The upstream's id is kept only within its bounds: it goes into the event as is.
        call.upstreamRequestId = upstreamRequestId != null
                && UsageEventBounds.upstreamRequestIdProblem("x-request-id", upstreamRequestId) == null ? upstreamRequestId : null;

        int status = response.status();
        String contentType = Objects.requireNonNullElse(response.header("content-type"), "application/json");
        if (status >= 400) {
            passUpstreamError(ctx, call, response, status, contentType);
        } else if (contentType.toLowerCase(Locale.ROOT).startsWith("text/event-stream")) {
            passStream(ctx, call, response, status, contentType, estimate);
        } else {
            passWhole(ctx, call, response, status, contentType, estimate);
        }
    }

    /** An upstream error: nothing was produced, so nothing is billed; the body passes through for the SDK to read. */
    private void passUpstreamError(ProxyExchange ctx, Call call, Upstream.Answer response, int status, String contentType) {
        byte[] bytes;
        try (InputStream in = response.body()) {
            bytes = in.readNBytes(MAX_ERROR_BODY_BYTES);
        } catch (IOException e) {
            bytes = OpenAiError.upstreamUnreachable().toJson().getBytes(StandardCharsets.UTF_8);
        }
        releaseQuietly(call);
        call.attributes.put("failure", "upstream_status_" + status);
        publish(call, Outcome.FAILED, status, TokenUsage.NONE, 0, UsageSource.REPORTED);
        metrics.request(call.endpoint, "failed");
        copyHeaders(ctx, response);
        answerNow(ctx, status, contentType, bytes);
    }

    private void passWhole(ProxyExchange ctx, Call call, Upstream.Answer response, int status, String contentType,
                           RequestEstimate estimate) {
        byte[] bytes;
        try (InputStream in = response.body()) {
            bytes = readWhole(in, response.contentLength());
        } catch (IOException e) {
            // The upstream took the call and then dropped it: bill the prompt we sent, the answer is lost.
            settle(call, publishBilled(call, Outcome.FAILED, 502, null, estimate, 0));
            metrics.request(call.endpoint, "failed");
            respondError(ctx, OpenAiError.upstreamUnreachable());
            return;
        }
        TokenUsage reported = null;
        try {
            reported = UsageParser.fromResponseBody(JSON.readTree(bytes)).orElse(null);
        } catch (IOException e) {
            // not JSON: bill the estimate below
        }
        Billed billed = publishBilled(call, Outcome.SUCCEEDED, status, reported, estimate, 0);
        metrics.request(call.endpoint, "succeeded");
        copyHeaders(ctx, response);
        answerNow(ctx, status, contentType, bytes);
        ctx.finish();
        settle(call, billed);
    }

    /**
     * Writes the whole answer and completes the response, so the caller has it before the handler returns (the
     * reservation is settled after that, off the caller's wait).
     */
    private static void answerNow(ProxyExchange ctx, int status, String contentType, byte[] bytes) {
        try {
            ctx.respond(status, contentType, bytes);
        } catch (IOException clientGone) {
            // The call was made and billed; only the caller did not stay for the answer.
        }
    }

    /**
     * Copies the SSE stream line by line and flushes at every event boundary (blank line), so the caller sees each
     * chunk as soon as the upstream sends it; the tracker reads each line on the side.
     *
     * <p>When the caller disconnects mid-stream the upstream is not aborted: the edge goes on reading it (the
     * caller gets nothing more), up to the drain timeout, to receive the usage chunk, and bills that usage
     * (REPORTED, cancelled=client_disconnected): a caller who leaves right after the content pays what OpenAI
     * charges, reasoning tokens included. Only when the usage does not come in time (or the upstream fails, or the
     * edge stops) is the call billed ESTIMATED, with {@code drain=<why>}: the prompt estimate plus every completion
     * token streamed, the ones read while draining included (ADR 0052).
     */
    private void passStream(ProxyExchange ctx, Call call, Upstream.Answer response, int status, String contentType,
                            RequestEstimate estimate) {
        StreamUsageTracker tracker = new StreamUsageTracker(call.model, tokenCounter);
        copyHeaders(ctx, response);
        ctx.status(status);
        ctx.header("Content-Type", contentType);
        ctx.header("Cache-Control", "no-cache");
        boolean clientGone = false;
        boolean upstreamCut = false;
        String drainFailure = null;
        InputStream in = response.body();
        ByteArrayOutputStream line = new ByteArrayOutputStream(512);
        byte[] buf = new byte[8192];
        try {
            OutputStream out;
            try {
                out = ctx.responseBody();
                out.flush(); // the status and headers go out now, before the first chunk
            } catch (IOException e) {
                clientGone = true;
                out = null;
            }
            while (!clientGone) {
                int n;
                try {
                    n = in.read(buf);
                } catch (IOException e) {
                    upstreamCut = true;
                    break;
                }
                if (n < 0) {
                    break;
                }
                boolean boundary = track(tracker, line, buf, n);
                try {
                    out.write(buf, 0, n);
                    if (boundary) {
                        out.flush();
                    }
                } catch (IOException e) {
                    clientGone = true;
                }
            }
            if (clientGone) {
                drainFailure = drain(response, tracker, line, buf);
            } else {
                try {
                    if (line.size() > 0) {
                        tracker.onLine(line.toString(StandardCharsets.UTF_8).strip());
                    }
                    out.flush();
                } catch (IOException e) {
                    clientGone = true;
                }
            }
        } finally {
            try {
                in.close(); // before the end (a disconnect past the drain) this aborts the upstream exchange too
            } catch (IOException ignored) {
                // closing is best effort
            }
        }
        TokenUsage reported = tracker.reportedUsage().orElse(null);
        Outcome outcome;
        if (clientGone) {
            outcome = Outcome.CANCELLED;
            call.attributes.put("cancelled", "client_disconnected");
            if (reported == null && drainFailure != null) {
                call.attributes.put("drain", drainFailure);
            }
        } else if (upstreamCut && reported == null) {
            outcome = Outcome.FAILED;
            call.attributes.put("failure", "upstream_stream_cut");
        } else {
            outcome = Outcome.SUCCEEDED;
        }
        Billed billed = publishBilled(call, outcome, clientGone ? 0 : status, reported, estimate, tracker.streamedCompletionTokens());
        metrics.request(call.endpoint, outcome.name().toLowerCase(Locale.ROOT));
        if (!clientGone) {
            try {
                ctx.responseBody().close(); // the stream's end reaches the caller now, not after the settle
            } catch (IOException e) {
                // the caller left right at the end; the call is billed already
            }
        }
        ctx.finish();
        settle(call, billed);
    }

    /** Feeds the complete lines in {@code buf[0..n)} to the tracker; true when a blank line (event boundary) passed. */
    private static boolean track(StreamUsageTracker tracker, ByteArrayOutputStream line, byte[] buf, int n) {
        boolean boundary = false;
        for (int i = 0; i < n; i++) {
            byte b = buf[i];
            line.write(b);
            if (b == '\n') {
                String text = line.toString(StandardCharsets.UTF_8);
                String stripped = text.endsWith("\r\n") ? text.substring(0, text.length() - 2) : text.substring(0, text.length() - 1);
                if (stripped.isEmpty()) {
                    boundary = true;
                } else {
                    tracker.onLine(stripped);
                }
                line.reset();
            }
        }
        return boundary;
    }

    /**
     * The caller has gone: reads the rest of the upstream's stream into the tracker only, until its usage arrives,
     * the stream ends, or the drain timeout (or the edge's shutdown, {@link #cutDrains}) aborts the exchange.
     *
     * @return null when the stream ended or its usage arrived, else why the drain stopped short
     *         ({@code timeout}, {@code shutdown}, {@code upstream_error}, {@code disabled})
     */
    private String drain(Upstream.Answer response, StreamUsageTracker tracker, ByteArrayOutputStream line, byte[] buf) {
        if (tracker.reportedUsage().isPresent()) {
            return null;
        }
        if (drainTimeout.isZero()) {
            return "disabled";
        }
        Drain drain = new Drain(response);
        drains.add(drain);
        CompletableFuture.delayedExecutor(drainTimeout.toNanos(), TimeUnit.NANOSECONDS).execute(() -> drain.cut("timeout"));
        try {
            InputStream in = response.body();
            while (tracker.reportedUsage().isEmpty()) {
                int n;
                try {
                    n = in.read(buf);
                } catch (IOException e) {
                    return drain.reason == null ? "upstream_error" : drain.reason;
                }
                if (n < 0) {
                    if (line.size() > 0) {
                        tracker.onLine(line.toString(StandardCharsets.UTF_8).strip());
                    }
                    return tracker.reportedUsage().isPresent() ? null : "upstream_ended";
                }
                track(tracker, line, buf, n);
            }
            return null;
        } finally {
            drain.done = true;
            drains.remove(drain);
        }
    }

    /** One stream being drained after its caller left; cut by its timer or at shutdown. */
    private static final class Drain {
        private final Upstream.Answer response;
        volatile String reason;
        volatile boolean done;

        Drain(Upstream.Answer response) {
            this.response = response;
        }

        synchronized void cut(String why) {
            if (done || reason != null) {
                return;
            }
            reason = why;
            response.abort();
        }
    }

    /**
     * Cuts every drain under way (their calls are billed ESTIMATED, drain=shutdown, at once): at shutdown, so a
     * stream whose caller left does not hold the edge past its grace period.
     */
    public void cutDrains() {
        for (Drain d : drains) {
            d.cut("shutdown");
        }
    }

    /** What a call was billed: the cost and tokens its reservation is settled with. */
    private record Billed(long costNanoUsd, long tokens) {
    }

    /**
     * Bills the reported usage, or when it never came the locally counted prompt and streamed completion tokens
     * (usageSource ESTIMATED), and publishes the call's event. The caller settles the reservation with the result
     * ({@link #settle}) once the answer is out: the event (durable in the spool when Kafka is away) is recorded
     * before the answer, the settle is a Redis round trip the caller need not wait for. Until it runs, the
     * reservation holds the call's estimate against the credit, so nothing is ever admitted past it meanwhile.
     */
    private Billed publishBilled(Call call, Outcome outcome, int httpStatus, TokenUsage reported, RequestEstimate estimate,
                                 long streamedCompletionTokens) {
        TokenUsage usage;
        UsageSource source;
        if (reported != null) {
            usage = reported;
            source = UsageSource.REPORTED;
        } else {
            usage = new TokenUsage(estimate.promptTokens(), 0, streamedCompletionTokens, 0);
            source = UsageSource.ESTIMATED;
        }
        long cost = call.price.costNanoUsd(usage);
        publish(call, outcome, httpStatus, usage, cost, source);
        return new Billed(cost, usage.totalTokens());
    }

    private void settle(Call call, Billed billed) {
        if (call.reservationOpen) {
            try {
                quota.settle(call.reservationId, billed.costNanoUsd(), billed.tokens(), call.eventId);
                call.reservationOpen = false;
            } catch (RuntimeException e) {
                LOG.warn("settling reservation of call {} failed: {}", call.eventId, e.toString());
            }
        }
    }

    /**
     * @param reason set for a bad-input rejection (the quota engine never saw the call): it is first charged one
     *               request against the caller's rate limits, so a flood of bad requests is cut off with 429 and
     *               no event, like any other flood (issue 14, finding 6); null for a rejection by the quota decision
     */
    private void reject(ProxyExchange ctx, Call call, OpenAiError error, String reason) {
        if (reason != null) {
            if (overRateLimit(ctx, call)) {
                return;
            }
            call.attributes.put("reject_reason", reason);
        }
        publish(call, Outcome.REJECTED, error.status(), TokenUsage.NONE, 0, UsageSource.REPORTED);
        metrics.request(call.endpoint, "rejected");
        respondError(ctx, error);
    }

    /** Charges a bad-input rejection one request; when the caller is over its limit, answers 429 (no event) and says so. */
    private boolean overRateLimit(ProxyExchange ctx, Call call) {
        Decision d = quota.rateLimitedRejection(call.caller.userId(), call.caller.apiKeyId()).orElse(null);
        if (d == null) {
            return false;
        }
        ctx.header(QuotaHeaders.EVENT_ID, null);
        QuotaHeaders.set(ctx::header, d);
        metrics.request(call.endpoint, "rate_limited");
        respondError(ctx, Rejections.of(d));
        return true;
    }

    /**
     * Input outside the bounds of ADR 0053: a 400 and nothing else — no event, no Redis key or log line made from the
     * value — so an oversized or unprintable value never reaches the pipeline (issue 14, finding 1).
     */
    private void refuse(ProxyExchange ctx, Call call, OpenAiError error) {
        // Charged to the caller's rate limit like any bad input (keyed by our user id, never by the bad value).
        if (overRateLimit(ctx, call)) {
            return;
        }
        ctx.header(QuotaHeaders.EVENT_ID, null);
        metrics.request(call.endpoint, "invalid");
        respondError(ctx, error);
    }

    /** The first request parameter out of its bounds, as a message starting with the parameter's name; else null. */
    static String parameterProblem(JsonNode tree) {
        for (String field : List.of("max_tokens", "max_completion_tokens", "max_output_tokens")) {
            JsonNode v = tree.get(field);
            if (v != null && v.isNumber() && !(integral(v) && v.asDouble() >= 0 && v.asDouble() <= UsageEventBounds.MAX_TOKENS_PARAM_MAX)) {
                return field + " must be an integer in 0.." + UsageEventBounds.MAX_TOKENS_PARAM_MAX + ", got " + v;
            }
        }
        JsonNode n = tree.get("n");
        if (n != null && n.isNumber() && !(integral(n) && n.asDouble() >= 1 && n.asDouble() <= UsageEventBounds.N_PARAM_MAX)) {
            return "n must be an integer in 1.." + UsageEventBounds.N_PARAM_MAX + ", got " + n;
        }
        return null;
    }

    private static boolean integral(JsonNode v) {
        return v.isIntegralNumber() || v.asDouble() == Math.rint(v.asDouble());
    }

    private void fail(ProxyExchange ctx, Call call, OpenAiError error, String reason) {
        call.attributes.put("failure", reason);
        publish(call, Outcome.FAILED, error.status(), TokenUsage.NONE, 0, UsageSource.REPORTED);
        metrics.request(call.endpoint, "failed");
        respondError(ctx, error);
    }

    private void publish(Call call, Outcome outcome, int httpStatus, TokenUsage usage, long costNanoUsd, UsageSource source) {
        if (call.published) {
            return;
        }
        call.published = true;
        Instant now = clock.instant();
        UsageEvent event = UsageEvent.newBuilder()
                .setEventId(call.eventId)
                .setOccurredAt(call.occurredAt)
                .setReceivedAt(now)
                .setTenantId(call.caller.tenantId())
                .setUserId(call.caller.userId())
                .setApiKeyId(call.caller.apiKeyId())
                .setKeySource(outcome == Outcome.REJECTED ? KeySource.NONE : call.keySource)
                .setProvider("openai")
                .setModel(call.model)
                .setEndpoint(call.endpoint)
                .setUpstreamRequestId(call.upstreamRequestId)
                .setOutcome(outcome)
                .setHttpStatus(httpStatus)
                .setPromptTokens(usage.promptTokens())
                .setCachedPromptTokens(usage.cachedPromptTokens())
                .setCompletionTokens(usage.completionTokens())
                .setReasoningTokens(usage.reasoningTokens())
                .setCostNanoUsd(costNanoUsd)
                .setPriceVersion(call.price == null ? null : call.price.priceVersion())
                .setUsageSource(source)
                .setStreamed(call.streamed)
                .setCacheHit(usage.cachedPromptTokens() > 0)
                .setReservationId(call.reservationId)
                .setLatencyMs(Math.max(0, (System.nanoTime() - call.startNanos) / 1_000_000))
                .setEdgeInstance(edgeInstance)
                .setAttributes(Map.copyOf(call.attributes))
                .build();
        if (outcome != Outcome.SUCCEEDED) {
            // Ids, model and status only: never a key, never prompt text.
            LOG.info("call {} user {} {} model={} outcome={} status={} reason={}", call.eventId, call.caller.userId(),
                    call.endpoint, LogSafe.of(call.model), outcome, httpStatus, call.attributes);
        }
        try {
            sink.submit(event);
        } catch (EventSink.SpoolFullException e) {
            // The sink refused durably; the caller's answer may already be on the wire (streams), so say it loudly.
            LOG.error("usage event {} for user {} could not be recorded: spool full", call.eventId, call.caller.userId());
            throw new SpoolFullRuntimeException(e);
        }
    }

    /** Unwinds to the route's exception handler, which answers 503 when nothing has been sent yet. */
    public static final class SpoolFullRuntimeException extends RuntimeException {
        SpoolFullRuntimeException(EventSink.SpoolFullException cause) {
            super(cause.getMessage(), cause, false, false);
        }
    }

    private void releaseQuietly(Call call) {
        if (!call.reservationOpen) {
            return;
        }
        call.reservationOpen = false;
        try {
            quota.release(call.reservationId);
        } catch (RuntimeException e) {
            LOG.warn("releasing reservation of call {} failed: {}", call.eventId, e.toString());
        }
    }

    private static void copyHeaders(ProxyExchange ctx, Upstream.Answer response) {
        for (String name : PASSED_RESPONSE_HEADERS) {
            String value = response.header(name);
            if (value != null) {
                ctx.header(name, value);
            }
        }
    }

    /** Writes an OpenAI-style error, with {@code x-should-retry: false} where retrying cannot help. */
    static void respondError(ProxyExchange ctx, OpenAiError error) {
        HttpErrors.headers(ctx::header, error);
        answerNow(ctx, error.status(), "application/json", error.toJson().getBytes(StandardCharsets.UTF_8));
    }

    /** Adds {@code stream_options.include_usage=true} to a streamed chat/completions request; other bodies pass unchanged. */
    static byte[] withIncludeUsage(String endpoint, ObjectNode tree, byte[] original) {
        if (!endpoint.equals("/v1/chat/completions") && !endpoint.equals("/v1/completions")) {
            return original;
        }
        JsonNode options = tree.get("stream_options");
        if (options != null && options.isObject() && options.path("include_usage").asBoolean(false)) {
            return original;
        }
        ObjectNode copy = tree.deepCopy();
        ObjectNode opts = options != null && options.isObject() ? (ObjectNode) copy.get("stream_options") : copy.putObject("stream_options");
        opts.put("include_usage", true);
        try {
            return JSON.writeValueAsBytes(copy);
        } catch (IOException e) {
            throw new IllegalStateException("could not re-serialise a parsed request", e);
        }
    }

    /**
     * The whole body: exactly its declared length when there is one (one array of the right size, then the end of
     * the stream is read, which keeps the connection reusable), else everything until the end.
     */
    private static byte[] readWhole(InputStream in, long contentLength) throws IOException {
        if (contentLength < 0 || contentLength > Integer.MAX_VALUE - 8) {
            return in.readAllBytes();
        }
        byte[] bytes = readDeclared(in, contentLength);
        if (bytes.length < contentLength) {
            throw new IOException("body shorter than its Content-Length");
        }
        return bytes;
    }

    /** At most {@code declared} bytes, then the end of the stream; an IOException when there is more. */
    private static byte[] readDeclared(InputStream in, long declared) throws IOException {
        byte[] bytes = in.readNBytes((int) declared);
        if (in.read() >= 0) {
            throw new IOException("body longer than its Content-Length");
        }
        return bytes;
    }

    private static final class BodyTooLargeException extends Exception {
        BodyTooLargeException() {
            super(null, null, false, false);
        }
    }

    private static byte[] readBounded(ProxyExchange ctx, long maxBytes) throws IOException, BodyTooLargeException {
        long declared = ctx.requestContentLength();
        if (declared > maxBytes) {
            throw new BodyTooLargeException();
        }
        InputStream in = ctx.requestBody();
        if (declared >= 0) {
            return readDeclared(in, declared);
        }
        byte[] bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
        if (bytes.length > maxBytes) {
            throw new BodyTooLargeException();
        }
        return bytes;
    }

    public static final class Builder {
        private Authenticator authenticator;
        private PriceBook priceBook;
        private TokenCounter tokenCounter;
        private QuotaGate quota;
        private UpstreamKeys keys;
        private EventSink sink;
        private EdgeMetrics metrics;
        private Upstream upstream;
        private long maxBodyBytes = 4L << 20;
        private long defaultMaxCompletionTokens = 1024;
        private String edgeInstance = "edge";
        private Duration drainTimeout = Duration.ofSeconds(30);
        private Clock clock = Clock.systemUTC();

        public Builder authenticator(Authenticator v) { this.authenticator = v; return this; }
        public Builder priceBook(PriceBook v) { this.priceBook = v; return this; }
        public Builder tokenCounter(TokenCounter v) { this.tokenCounter = v; return this; }
        public Builder quota(QuotaGate v) { this.quota = v; return this; }
        public Builder keys(UpstreamKeys v) { this.keys = v; return this; }
        public Builder sink(EventSink v) { this.sink = v; return this; }
        public Builder metrics(EdgeMetrics v) { this.metrics = v; return this; }
        public Builder upstream(Upstream v) { this.upstream = v; return this; }
        public Builder maxBodyBytes(long v) { this.maxBodyBytes = v; return this; }
        public Builder defaultMaxCompletionTokens(long v) { this.defaultMaxCompletionTokens = v; return this; }
        public Builder edgeInstance(String v) { this.edgeInstance = v; return this; }
        /** UPSTREAM_DRAIN_TIMEOUT: how long a stream is read on for its usage after the caller left (0 = not at all). */
        public Builder drainTimeout(Duration v) { this.drainTimeout = v; return this; }
        public Builder clock(Clock v) { this.clock = v; return this; }

        public OpenAiProxyHandler build() {
            return new OpenAiProxyHandler(this);
        }
    }
}
