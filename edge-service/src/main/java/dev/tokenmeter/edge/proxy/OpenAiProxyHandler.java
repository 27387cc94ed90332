package dev.tokenmeter.edge.proxy;

import dev.tokenmeter.edge.async.AsyncJob;
import dev.tokenmeter.edge.async.AsyncJobsConfig;
import dev.tokenmeter.edge.async.JobCallbacks;
import dev.tokenmeter.edge.async.JobResult;
import dev.tokenmeter.edge.async.JobStore;
import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.auth.BearerToken;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.call.MeteredCall;
import dev.tokenmeter.edge.call.Metering;
import dev.tokenmeter.edge.call.QuotaGate;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.http.QuotaHeaders;
import dev.tokenmeter.edge.http.Rejections;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.edge.pricing.PriceCard;
import dev.tokenmeter.edge.pricing.ServiceTier;
import dev.tokenmeter.edge.pricing.TierPricing;
import dev.tokenmeter.edge.responsecache.ResponseCache;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.publish.EventSink;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.Route;
import dev.tokenmeter.edge.tokens.RequestEstimate;
import dev.tokenmeter.edge.tokens.TokenCounter;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.validate.Labels;
import dev.tokenmeter.events.UsageEvent;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The OpenAI-compatible proxy path, one call read top to bottom in {@link #proxy}: authenticate → read the request
 * ({@link RequestReader}) → price and estimate → reserve ({@link MeteredCall}) → choose the upstream key → the
 * upstream exchange ({@link UpstreamExchange}) → relay the answer and bill it ({@link AnswerRelay}: whole, or
 * {@link SseRelay} for a stream): publish exactly one {@link UsageEvent}, then settle (or release) the reservation.
 *
 * <p>Bodies pass through byte for byte, except that a streamed chat or completions request gets
 * {@code stream_options.include_usage=true} so its usage arrives in the last chunk. The caller's {@code tm_} key
 * never goes upstream; neither keys nor prompt text are ever logged.
 *
 * <p>Every call by an authenticated caller produces one event (SUCCEEDED, FAILED, CANCELLED or REJECTED); a call
 * without a valid key produces none, since there is nobody to attribute it to (it is counted in the metrics).
 *
 * <p>A little over 300 lines: {@link #proxy} is the step sequence above; besides it, authentication, the key choice,
 * refusals and failures are a method each, then the builder and the drain on shutdown. Every part they call is its
 * own class.
 */
public final class OpenAiProxyHandler {

    /** The proxied POST routes; every other {@code /v1/...} path is refused (ADR 0085, {@link OpenAiError#unsupportedEndpoint}). */
    public static final List<String> ENDPOINTS = OpenAiError.SUPPORTED_ENDPOINTS;

    private static final Logger LOG = LoggerFactory.getLogger(OpenAiProxyHandler.class);

    private final Authenticator authenticator;
    private final PriceCard prices;
    private final TokenCounter tokenCounter;
    private final UpstreamKeys keys;
    private final EdgeMetrics metrics;
    private final Metering metering;
    private final RequestReader requests;
    private final UpstreamExchange upstream;
    private final SseRelay streams;
    private final AnswerRelay answers;
    private final CachedAnswers cache;
    private final long defaultMaxCompletionTokens;
    /** Calls in {@link #handle}, settle included (it runs after the answer is out). */
    private final AtomicInteger underWay = new AtomicInteger();
    /** Multipart uploads in {@link #handle} (ADR 0088). */
    private final UploadReader.InFlight uploads = new UploadReader.InFlight(UploadReader.MAX_UPLOADS_IN_FLIGHT);
    /** MAX_CALLS_IN_FLIGHT: beyond it a call is shed at once (503, retry-after) instead of queueing behind the others. */
    private final int maxCallsInFlight;
    /** The Batch API's routes (ADR 0087); null = not served (404 in OpenAI's shape, as any unsupported path). */
    private final BatchRoutes batches;

    private OpenAiProxyHandler(Builder b) {
        this.authenticator = Objects.requireNonNull(b.authenticator, "authenticator");
        this.prices = Objects.requireNonNull(b.prices, "priceBook");
        this.tokenCounter = Objects.requireNonNull(b.tokenCounter, "tokenCounter");
        this.keys = Objects.requireNonNull(b.keys, "keys");
        this.metrics = Objects.requireNonNull(b.metrics, "metrics");
        this.metering = new Metering(Objects.requireNonNull(b.quota, "quota"), Objects.requireNonNull(b.sink, "sink"), metrics,
                b.edgeInstance, b.clock);
        this.requests = new RequestReader(b.maxBodyBytes);
        this.upstream = new UpstreamExchange(Objects.requireNonNull(b.upstream, "upstream"), metrics);
        this.streams = new SseRelay(b.drainTimeout);
        this.answers = new AnswerRelay(metrics, tokenCounter, streams, new TierPricing(prices));
        this.cache = new CachedAnswers(b.responseCache, b.responseCacheDefaultTtl, b.flightWait, b.flightLease, b.clock);
        this.defaultMaxCompletionTokens = b.defaultMaxCompletionTokens;
        this.maxCallsInFlight = b.maxCallsInFlight;
        this.batches = b.batchStore == null ? null : new BatchRoutes(metering, prices, tokenCounter, keys, b.upstream,
                b.batchStore, b.maxBatchFileBytes, b.maxBatchLines, b.defaultMaxCompletionTokens);
    }

    /** Batches read per poller round (ADR 0087). */
    static final int BATCH_POLL_LIMIT = 500;

    /**
     * One round of the Batch API's poller (ADR 0087): the open batches read upstream, those that ended billed.
     * Returns how many were read; 0 when the Batch API is not served.
     */
    public int pollBatches() {
        return batches == null ? 0 : batches.pollOpen(BATCH_POLL_LIMIT);
    }

    /** True when this proxy serves the Batch API's {@code path} (ADR 0087). */
    public boolean servesBatch(String path) {
        return batches != null && BatchRoutes.handles(path);
    }

    /**
     * A Batch API request ({@code /v1/files}, {@code /v1/batches}, ADR 0087): counted and shed like a call, the key
     * checked like a call's, then {@link BatchRoutes}.
     */
    public void batch(ProxyExchange ctx, String method, String path, String query) {
        String endpoint = path.startsWith("/v1/files") ? "/v1/files" : "/v1/batches"; // the metrics' label: no ids
        try {
            if (underWay.incrementAndGet() > maxCallsInFlight) {
                metrics.request(endpoint, "shed");
                AnswerRelay.respondError(ctx, OpenAiError.overloaded(OVERLOADED_RETRY));
                return;
            }
            Caller caller = authenticate(ctx, endpoint);
            if (caller != null) {
                batches.handle(ctx, caller, method, path, query);
            }
        } catch (MeteredCall.SpoolFull e) {
            if (!ctx.committed()) {
                AnswerRelay.respondError(ctx, OpenAiError.spoolFull());
            }
        } catch (Upstream.UpstreamTimeoutException e) {
            AnswerRelay.respondError(ctx, OpenAiError.upstreamTimeout(upstream.idleTimeout()));
        } catch (IOException e) {
            if (!ctx.committed()) {
                AnswerRelay.respondError(ctx, OpenAiError.upstreamUnreachable());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            AnswerRelay.respondError(ctx, OpenAiError.upstreamUnreachable());
        } catch (RuntimeException e) {
            LOG.error("batch request {} {} failed inside the edge: {}", method, path, e.toString());
            if (!ctx.committed()) {
                AnswerRelay.respondError(ctx, OpenAiError.internal("The edge failed to handle this request."));
            }
        } finally {
            underWay.decrementAndGet();
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    public void handle(ProxyExchange ctx, String endpoint) {
        handle(ctx, endpoint, this::proxy);
    }

    /**
     * {@code POST /v1/async/...} (ADR 0083): the sync route's checks, quota reservation and event on refusal, then the
     * call is queued as a job on {@code jobs} and answered 202 with its id at once. {@code endpoint}: the sync route.
     */
    public void enqueue(ProxyExchange ctx, String endpoint, JobStore jobs) {
        handle(ctx, endpoint, (c, call) -> enqueueJob(c, call, jobs));
    }

    private void handle(ProxyExchange ctx, String endpoint, java.util.function.BiConsumer<ProxyExchange, MeteredCall> step) {
        try {
            if (underWay.incrementAndGet() > maxCallsInFlight) {
                // Shed before the key check: past capacity a call gets a clear answer at once, never a wait behind
                // the others (issue 20's burst). Nothing ran, so there is no event, as for a call without a key.
                metrics.request(endpoint, "shed");
                AnswerRelay.respondError(ctx, OpenAiError.overloaded(OVERLOADED_RETRY));
                return;
            }
            if (!uploads.enter(endpoint)) {
                // Uploads are held whole in memory (ADR 0088): past MAX_UPLOADS_IN_FLIGHT one is shed like a call above.
                metrics.request(endpoint, "shed");
                AnswerRelay.respondError(ctx, OpenAiError.overloaded(OVERLOADED_RETRY));
                return;
            }
            try {
                handleCall(ctx, endpoint, step);
            } finally {
                uploads.leave(endpoint);
            }
        } finally {
            underWay.decrementAndGet();
        }
    }

    /** The retry-after of a call shed past MAX_CALLS_IN_FLIGHT. */
    static final Duration OVERLOADED_RETRY = Duration.ofSeconds(1);

    private void handleCall(ProxyExchange ctx, String endpoint, java.util.function.BiConsumer<ProxyExchange, MeteredCall> step) {
        MeteredCall call = null;
        // The call's time and latency start when the request arrives, before the key check.
        Instant arrived = metering.now();
        long arrivedNanos = System.nanoTime();
        try {
            Caller caller = authenticate(ctx, endpoint);
            if (caller != null) {
                call = metering.start(caller, endpoint, arrived, arrivedNanos);
                step.accept(ctx, call);
            }
        } catch (MeteredCall.SpoolFull e) {
            call.releaseQuietly();
            metrics.request(endpoint, "failed");
            if (!ctx.committed()) {
                ctx.header(QuotaHeaders.EVENT_ID, null); // the spool refused the event: there is none to name
                AnswerRelay.respondError(ctx, OpenAiError.spoolFull());
            }
        } catch (RuntimeException e) {
            // Never leave a call unbilled or a reservation dangling because of a bug on our side.
            LOG.error("call {} failed inside the edge: {}", call == null ? "(unauthenticated)" : call.eventId(), e.toString());
            if (call != null) {
                call.failedInside();
            }
            if (!ctx.committed()) {
                AnswerRelay.respondError(ctx, OpenAiError.internal("The edge failed to handle this request."));
            }
            metrics.request(endpoint, "failed");
        }
    }

    /** The caller of an active key; else answered (401, or 403 for a disabled account: no body read, no event) and null. */
    private Caller authenticate(ProxyExchange ctx, String endpoint) {
        String presented = BearerToken.from(ctx.requestHeader("Authorization"));
        Caller caller = presented == null ? null : authenticator.authenticate(presented).orElse(null);
        if (caller == null) {
            metrics.request(endpoint, "unauthenticated");
            AnswerRelay.respondError(ctx, OpenAiError.invalidApiKey(presented == null
                    ? "You didn't provide an API key. Provide it as 'Authorization: Bearer tm_...'."
                    : "Incorrect API key provided: " + ApiKeys.redact(presented) + "."));
            return null;
        }
        if (caller.expired()) {
            // Like an unknown key: no body read, no event (ADR 0077).
            metrics.request(endpoint, "unauthenticated");
            AnswerRelay.respondError(ctx, OpenAiError.apiKeyExpired());
            return null;
        }
        if (!caller.active()) {
            // Before any other work: no body read, no event, no Redis (issue 14, finding 6).
            metrics.request(endpoint, "account_disabled");
            AnswerRelay.respondError(ctx, OpenAiError.accountDisabled());
            return null;
        }
        return caller;
    }

    /** A request read, priced and estimated: what both the sync route and a job's enqueue go on with. */
    private record Priced(RequestReader.ProxyRequest request, RequestEstimate estimate, long estimatedCostNanoUsd) {
    }

    /** One authenticated call, step by step; each step that ends the call answers it and returns. */
    private void proxy(ProxyExchange ctx, MeteredCall call) {
        // The one event of this call carries this id: callers and reconciliation can match answers to events.
        ctx.header(QuotaHeaders.EVENT_ID, call.eventId());
        Priced priced = readAndPrice(ctx, call);
        if (priced == null) {
            return;
        }
        RequestReader.ProxyRequest request = priced.request();
        RequestEstimate estimate = priced.estimate();
        long estimatedCost = priced.estimatedCostNanoUsd();

        CachedAnswers.Lookup cached;
        try {
            cached = cache.lookup(ctx, call, request);
        } catch (RequestReader.BadRequest bad) {
            refuse(ctx, call, bad);
            return;
        }
        if (cached.result() != null) {
            metrics.cacheLookup(call.endpoint(), call.model(), cached.result());
        }

        try {
            proxyWithCache(ctx, call, request, estimate, estimatedCost, cached);
        } finally {
            CachedAnswers.done(cached); // a lead is given up only now: after the answer is stored, or failed
        }
    }

    /**
     * The call's labels, body, price and allow-list checked (each refusal answered, with its event when it has one:
     * then null), and its estimate.
     */
    private Priced readAndPrice(ProxyExchange ctx, MeteredCall call) {
        try {
            // Before the body and any quota or upstream work: labels out of bounds are a 400 and nothing else (ADR 0078).
            call.labels(Labels.parseHeader(ctx.requestHeader(Labels.HEADER)));
        } catch (Labels.InvalidLabelsException e) {
            refuse(ctx, call, new RequestReader.BadRequest(OpenAiError.invalidRequest(e.getMessage(), Labels.HEADER), null));
            return null;
        }

        RequestReader.ProxyRequest request;
        try {
            request = requests.read(ctx, call.endpoint());
        } catch (RequestReader.BadRequest bad) {
            refuse(ctx, call, bad);
            return null;
        }
        call.model(request.model()).streamed(request.streamed());

        // The request's tier drives only the estimate; the tier the answer reports is billed (AnswerRelay, ADR 0068).
        ServiceTier tier = ServiceTier.requested(request.tree().path("service_tier").textValue());
        ModelPrice price = prices.priceAt(call.model(), tier, call.occurredAt()).orElse(null);
        if (price == null) {
            refuse(ctx, call, tier != ServiceTier.STANDARD && prices.priceAt(call.model(), ServiceTier.STANDARD, call.occurredAt()).isPresent()
                    ? new RequestReader.BadRequest(OpenAiError.serviceTierNotPriced(call.model(), tier.dbName()), "service_tier_not_priced")
                    : new RequestReader.BadRequest(OpenAiError.modelNotFound(call.model()), "model_not_found"));
            return null;
        }
        if (!call.caller().models().admits(call.model(), prices.resolvedModel(call.model(), call.occurredAt()))) {
            refuse(ctx, call, new RequestReader.BadRequest(OpenAiError.modelNotAllowed(call.model()), "model_not_allowed"));
            return null;
        }
        call.price(price);
        RequestEstimate estimate = RequestEstimate.of(call.endpoint(), call.model(), request.tree(), tokenCounter, defaultMaxCompletionTokens);
        long estimatedCost = price.costNanoUsd(new TokenUsage(estimate.promptTokens(), 0, estimate.maxCompletionTokens(), 0,
                estimate.mediaInputTokens()));

        return new Priced(request, estimate, estimatedCost);
    }

    /** The call's steps from the record check on: answered from the cache, or admitted and sent upstream. */
    private void proxyWithCache(ProxyExchange ctx, MeteredCall call, RequestReader.ProxyRequest request, RequestEstimate estimate,
                                long estimatedCost, CachedAnswers.Lookup cached) {
        if (unrecordable(ctx, call)) {
            return;
        }

        if (cached.hit() != null) {
            // Priced like the miss that stored it (the tier its answer named), at today's price, times the plan's share.
            answers.priceByAnswer(call, cached.hit().answeredModel(), cached.hit().serviceTier());
            long billedNanoUsd = call.caller().cache().hitPrice(call.price().costNanoUsd(cached.hit().usage()));
            Decision decision = admit(ctx, call, billedNanoUsd, cached.hit().usage().totalTokens());
            if (decision != null) {
                call.keySource(decision.route() == Route.PERSONAL_KEY ? KeySource.PERSONAL_KEY : KeySource.SERVICE_CREDIT);
                CachedAnswers.answerHit(ctx, call, cached, billedNanoUsd, metrics);
            }
            return;
        }

        Decision decision = admit(ctx, call, estimatedCost, estimate.totalTokens());
        if (decision == null) {
            return;
        }

        String upstreamKey = chooseKey(call, decision.route());
        if (upstreamKey == null || upstreamKey.isEmpty()) {
            fail(ctx, call, OpenAiError.internal("No upstream key is available for this call."), "no_upstream_key");
            return;
        }

        Upstream.Answer answer;
        try {
            answer = upstream.send(ctx, call.endpoint(), request, upstreamKey);
        } catch (Upstream.UpstreamTimeoutException e) {
            fail(ctx, call, OpenAiError.upstreamTimeout(upstream.idleTimeout()), "upstream_timeout");
            return;
        } catch (IOException e) {
            fail(ctx, call, OpenAiError.upstreamUnreachable(), "upstream_unreachable");
            return;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail(ctx, call, OpenAiError.upstreamUnreachable(), "interrupted");
            return;
        }
        call.upstreamRequestId(UpstreamExchange.requestId(answer));

        answers.relayAndBill(ctx, call, answer, estimate, cached.store());
    }

    /** True (and answered 503) when the sink cannot take an event now: the call could not be billed, so nothing is spent. */
    private boolean unrecordable(ProxyExchange ctx, MeteredCall call) {
        if (metering.canRecord()) {
            return false;
        }
        ctx.header(QuotaHeaders.EVENT_ID, null);
        metrics.request(call.endpoint(), "rejected");
        AnswerRelay.respondError(ctx, OpenAiError.eventsUnavailable());
        return true;
    }

    // ---- async jobs (ADR 0083) ----

    /** The retry-after of a job refused because its tenant's queue is full (ASYNC_MAX_QUEUED_PER_TENANT). */
    static final Duration QUEUE_FULL_RETRY = Duration.ofSeconds(2);

    /**
     * A job's POST: checked and reserved like the sync call (a refusal is the same answer and the same event), then
     * queued by one script (tenant place, job hash, stream entry: ADR 0090); the 202 names the job, whose id is also its
     * call's event id. A full tenant queue is a 429 with its reservation released (no event: nothing ran, as for a
     * shed call).
     */
    private void enqueueJob(ProxyExchange ctx, MeteredCall call, JobStore jobs) {
        ctx.header(QuotaHeaders.EVENT_ID, call.eventId());
        call.attribute(ASYNC_ATTRIBUTE, "true");
        Priced priced = readAndPrice(ctx, call);
        if (priced == null) {
            return;
        }
        if (call.streamed()) {
            refuse(ctx, call, new RequestReader.BadRequest(OpenAiError.invalidRequest(
                    "An async job cannot stream; send it without stream and GET the job for its whole answer.", "stream"),
                    "async_stream"));
            return;
        }
        String callbackUrl = ctx.requestHeader(JobCallbacks.HEADER);
        if (callbackUrl != null) {
            try {
                if (!jobs.config().callbacks()) {
                    throw new IllegalArgumentException("Callbacks are not enabled at this edge; GET the job instead.");
                }
                callbackUrl = JobCallbacks.check(callbackUrl);
            } catch (IllegalArgumentException e) {
                // Out of its bounds: a 400 and nothing else, like any bound of ADR 0053 (the value is never logged).
                refuse(ctx, call, new RequestReader.BadRequest(OpenAiError.invalidRequest(e.getMessage(), JobCallbacks.HEADER), null));
                return;
            }
        }
        if (unrecordable(ctx, call)) {
            return;
        }
        String tenant = call.caller().tenantId();
        Decision decision = admit(ctx, call, priced.estimatedCostNanoUsd(), priced.estimate().totalTokens());
        if (decision == null) {
            return;
        }
        AsyncJob job = new AsyncJob(call.eventId(), tenant, call.caller().userId(), call.caller().apiKeyId(), call.caller().project(),
                call.endpoint(), call.model(), priced.request().body(), call.labels(), decision.reservationId(), decision.route(),
                call.occurredAt(), callbackUrl);
        JobStore.Enqueued enqueued;
        try {
            enqueued = jobs.enqueue(job, metering.now());
        } catch (RuntimeException e) {
            // One script (ADR 0090): it ran whole or not at all, so no place is held.
            LOG.warn("async job {} of user {} could not be queued: {}", job.jobId(), job.userId(), e.toString());
            fail(ctx, call, OpenAiError.unavailable("The job could not be queued; try again.", Duration.ofSeconds(1)), "async_queue_unavailable");
            return;
        }
        if (enqueued != JobStore.Enqueued.QUEUED) {
            // Full tenant queue (or a job id queued already, which a fresh event id never is): the reservation back,
            // no event — nothing ran, as for a shed call — and 429 with retry-after.
            call.releaseQuietly();
            ctx.header(QuotaHeaders.EVENT_ID, null);
            metrics.request(call.endpoint(), "queue_full");
            AnswerRelay.respondError(ctx, OpenAiError.rateLimited("Too many async jobs queued for your organization; retry later.",
                    "requests", QUEUE_FULL_RETRY));
            return;
        }
        metrics.request(call.endpoint(), "queued");
        AnswerRelay.respond(ctx, 202, AsyncJobJson.queued(job));
    }

    /** The attribute that marks a job's event (the event is a normal usage event otherwise; no schema change). */
    public static final String ASYNC_ATTRIBUTE = "async";

    /**
     * How long a job waits for its event to be acknowledged by Kafka or spooled: well above SPOOL_SEND_TIMEOUT (2 s),
     * after which an unacknowledged event goes to the spool.
     */
    private static final Duration JOB_EVENT_RECORDED_WITHIN = Duration.ofSeconds(30);

    /**
     * Runs a queued job as the call it was admitted as (ADR 0083): its event id is the job id, its reservation the one
     * made at enqueue time; the request goes upstream as the sync route sends it, retried after
     * {@code config.backoffBefore} on 429, 5xx, a timeout or no connection, at most {@code ASYNC_MAX_ATTEMPTS} in all
     * (counting an earlier worker's). The answer is billed and settled by the same relay as a sync call's (an upstream
     * error: a FAILED event, the reservation released) and kept as the result.
     *
     * @throws IllegalStateException when interrupted (shutdown) before the call was billed: the job stays pending
     */
    public JobResult runJob(AsyncJob job, int attemptsBefore, Runnable attemptStarted, AsyncJobsConfig config) {
        underWay.incrementAndGet();
        try {
            JobResult result = runJobCall(job, attemptsBefore, attemptStarted, config);
            // The job's event must be safe before its result is recorded and its entry acknowledged: an edge killed
            // with the event still in memory would leave the job ended and unbilled. Not yet recorded: the job stays
            // pending and runs again under the same event id (billed once, ADR 0083).
            if (!metering.awaitRecorded(JOB_EVENT_RECORDED_WITHIN)) {
                throw new IllegalStateException("the event of job " + job.jobId() + " was not recorded within "
                        + JOB_EVENT_RECORDED_WITHIN.toSeconds() + " s");
            }
            return result;
        } finally {
            underWay.decrementAndGet();
        }
    }

    private JobResult runJobCall(AsyncJob job, int attemptsBefore, Runnable attemptStarted, AsyncJobsConfig config) {
        MeteredCall call = metering.job(job.caller(), job.endpoint(), job.jobId(), job.occurredAt(), job.reservationId());
        call.attribute(ASYNC_ATTRIBUTE, "true").labels(job.labels());
        call.model(job.model());
        CapturedExchange ctx = new CapturedExchange(job.body());
        try {
            RequestReader.ProxyRequest request = requests.read(ctx, call.endpoint());
            ServiceTier tier = ServiceTier.requested(request.tree().path("service_tier").textValue());
            ModelPrice price = prices.priceAt(call.model(), tier, call.occurredAt()).orElse(null);
            if (price == null) {
                fail(ctx, call, OpenAiError.modelNotFound(call.model()), "model_not_found");
                return result(ctx, JobResult.FAILED, "model_not_found");
            }
            call.price(price);
            RequestEstimate estimate = RequestEstimate.of(call.endpoint(), call.model(), request.tree(), tokenCounter, defaultMaxCompletionTokens);
            String upstreamKey = chooseKey(call, job.route());
            if (upstreamKey == null || upstreamKey.isEmpty()) {
                fail(ctx, call, OpenAiError.internal("No upstream key is available for this call."), "no_upstream_key");
                return result(ctx, JobResult.FAILED, "no_upstream_key");
            }
            for (int attempt = attemptsBefore + 1; ; attempt++) {
                if (attempt > 1) {
                    Thread.sleep(config.backoffBefore(attempt));
                }
                attemptStarted.run();
                boolean last = attempt >= config.maxAttempts();
                Upstream.Answer answer;
                try {
                    answer = upstream.send(ctx, call.endpoint(), request, upstreamKey);
                } catch (Upstream.UpstreamTimeoutException e) {
                    if (!last) continue;
                    fail(ctx, call, OpenAiError.upstreamTimeout(upstream.idleTimeout()), "upstream_timeout");
                    return result(ctx, JobResult.DEAD, "upstream_timeout after " + attempt + " attempts");
                } catch (IOException e) {
                    if (!last) continue;
                    fail(ctx, call, OpenAiError.upstreamUnreachable(), "upstream_unreachable");
                    return result(ctx, JobResult.DEAD, "upstream_unreachable after " + attempt + " attempts");
                }
                boolean retryable = answer.status() == 429 || answer.status() >= 500;
                if (retryable && !last) {
                    answer.abort();
                    continue;
                }
                call.upstreamRequestId(UpstreamExchange.requestId(answer));
                answers.relayAndBill(ctx, call, answer, estimate, null);
                if (retryable) {
                    return result(ctx, JobResult.DEAD, "upstream_status_" + answer.status() + " after " + attempt + " attempts");
                }
                return result(ctx, answer.status() < 400 ? JobResult.SUCCEEDED : JobResult.FAILED, null);
            }
        } catch (InterruptedException e) {
            // Shutdown: nothing billed; the reservation stays for the worker that claims the job.
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted before the job was billed");
        } catch (RequestReader.BadRequest bad) {
            // Checked when it was queued: only a changed bound gets here.
            call.fail(bad.error.status(), "async_bad_request");
            AnswerRelay.respondError(ctx, bad.error);
            return result(ctx, JobResult.FAILED, "bad_request");
        } catch (MeteredCall.SpoolFull e) {
            throw e; // not billed: the job stays pending, its reservation open, and runs again once the spool has room
        } catch (RuntimeException e) {
            LOG.error("async job {} failed inside the edge: {}", job.jobId(), e.toString());
            call.failedInside();
            return new JobResult(JobResult.FAILED, 500, "application/json",
                    OpenAiError.internal("The edge failed to run this job.").toJson().getBytes(java.nio.charset.StandardCharsets.UTF_8),
                    "internal");
        }
    }

    private static JobResult result(CapturedExchange ctx, String status, String reason) {
        return new JobResult(status, ctx.status(), ctx.contentType(), ctx.body(), reason);
    }

    /** The quota decision for {@code cost}; when it refuses, the REJECTED event and the error are out and null. */
    private Decision admit(ProxyExchange ctx, MeteredCall call, long costNanoUsd, long tokens) {
        Decision decision = call.reserve(costNanoUsd, tokens);
        QuotaHeaders.set(ctx::header, decision);
        if (!decision.admitted()) {
            OpenAiError error = call.reject(decision);
            metrics.request(call.endpoint(), "rejected");
            AnswerRelay.respondError(ctx, error);
            return null;
        }
        return decision;
    }

    private String chooseKey(MeteredCall call, Route route) {
        if (route == Route.PERSONAL_KEY) {
            call.keySource(KeySource.PERSONAL_KEY);
            return keys.personalKey(call.caller().userId()).orElse(null);
        }
        call.keySource(KeySource.SERVICE_CREDIT);
        return keys.serviceKey();
    }

    /**
     * Bad input: first charged one request against the caller's rate limits (keyed by our user id, never by the bad
     * value), so a flood of it is cut off with 429 and no event, like any other flood (issue 14, finding 6). Then a
     * REJECTED event with its reason — or, for input outside the bounds of ADR 0053, a 400 and nothing else: no
     * event, no Redis key or log line made from the value (issue 14, finding 1).
     */
    private void refuse(ProxyExchange ctx, MeteredCall call, RequestReader.BadRequest bad) {
        Decision limited = metering.quota().rateLimitedRejection(call.caller().userId(), call.caller().apiKeyId()).orElse(null);
        if (limited != null) {
            ctx.header(QuotaHeaders.EVENT_ID, null);
            QuotaHeaders.set(ctx::header, limited);
            metrics.request(call.endpoint(), "rate_limited");
            AnswerRelay.respondError(ctx, Rejections.of(limited));
            return;
        }
        if (bad.rejectReason == null) {
            ctx.header(QuotaHeaders.EVENT_ID, null);
            metrics.request(call.endpoint(), "invalid");
        } else {
            call.reject(bad.error, bad.rejectReason);
            metrics.request(call.endpoint(), "rejected");
        }
        AnswerRelay.respondError(ctx, bad.error);
    }

    /** Failed before the upstream produced anything: reservation back, one FAILED event, the error. */
    private void fail(ProxyExchange ctx, MeteredCall call, OpenAiError error, String reason) {
        call.fail(error.status(), reason);
        metrics.request(call.endpoint(), "failed");
        AnswerRelay.respondError(ctx, error);
    }

    /** Cuts every stream drained after its caller left (shutdown). */
    public void cutDrains() {
        streams.cutDrains();
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

    public static final class Builder {
        private Authenticator authenticator;
        private PriceCard prices;
        private TokenCounter tokenCounter;
        private QuotaGate quota;
        private UpstreamKeys keys;
        private EventSink sink;
        private EdgeMetrics metrics;
        private UpstreamCall upstream;
        private long maxBodyBytes = 4L << 20;
        private long defaultMaxCompletionTokens = 1024;
        private String edgeInstance = "edge";
        private Duration drainTimeout = Duration.ofSeconds(30);
        private int maxCallsInFlight = 1000;
        private Clock clock = Clock.systemUTC();
        private ResponseCache responseCache;
        private Duration responseCacheDefaultTtl = Duration.ofMinutes(5);
        private Duration flightWait = Duration.ZERO;
        private Duration flightLease = Duration.ofSeconds(20);
        private dev.tokenmeter.edge.proxy.batch.BatchStore batchStore;
        private long maxBatchFileBytes = 32L << 20;
        private int maxBatchLines = 50_000;

        public Builder authenticator(Authenticator v) { this.authenticator = v; return this; }
        public Builder priceBook(PriceBook v) { this.prices = v; return this; }
        public Builder prices(PriceCard v) { this.prices = v; return this; }
        public Builder tokenCounter(TokenCounter v) { this.tokenCounter = v; return this; }
        public Builder quota(QuotaGate v) { this.quota = v; return this; }
        public Builder keys(UpstreamKeys v) { this.keys = v; return this; }
        public Builder sink(EventSink v) { this.sink = v; return this; }
        public Builder metrics(EdgeMetrics v) { this.metrics = v; return this; }
        public Builder upstream(UpstreamCall v) { this.upstream = v; return this; }
        public Builder maxBodyBytes(long v) { this.maxBodyBytes = v; return this; }
        public Builder defaultMaxCompletionTokens(long v) { this.defaultMaxCompletionTokens = v; return this; }
        public Builder edgeInstance(String v) { this.edgeInstance = v; return this; }
        /** UPSTREAM_DRAIN_TIMEOUT: how long a stream is read on for its usage after the caller left (0 = not at all). */
        public Builder drainTimeout(Duration v) { this.drainTimeout = v; return this; }
        public Builder clock(Clock v) { this.clock = v; return this; }
        /**
         * The response cache (ADR 0074); null (the default) = none. {@code defaultTtl}: RESPONSE_CACHE_DEFAULT_TTL, for
         * keys that turn it on under a plan without a TTL.
         */
        public Builder responseCache(ResponseCache cache, Duration defaultTtl) {
            this.responseCache = cache;
            this.responseCacheDefaultTtl = Objects.requireNonNull(defaultTtl, "defaultTtl");
            return this;
        }

        /**
         * Single flight (issue 19): identical cacheable calls wait up to {@code wait} for the one that leads (0 = off);
         * a lead lasts {@code lease} unless given up.
         */
        public Builder singleFlight(Duration wait, Duration lease) {
            this.flightWait = Objects.requireNonNull(wait, "wait");
            this.flightLease = Objects.requireNonNull(lease, "lease");
            return this;
        }
        /**
         * Serves the Batch API (ADR 0087) with {@code store} (null, the default: not served), MAX_BATCH_FILE_BYTES and
         * MAX_BATCH_LINES.
         */
        public Builder batches(dev.tokenmeter.edge.proxy.batch.BatchStore store, long maxFileBytes, int maxLines) {
            this.batchStore = store;
            this.maxBatchFileBytes = maxFileBytes;
            this.maxBatchLines = maxLines;
            return this;
        }
        /** MAX_CALLS_IN_FLIGHT (at least 1). */
        public Builder maxCallsInFlight(int v) {
            if (v < 1) throw new IllegalArgumentException("maxCallsInFlight must be at least 1: " + v);
            this.maxCallsInFlight = v;
            return this;
        }

        public OpenAiProxyHandler build() {
            return new OpenAiProxyHandler(this);
        }
    }
}
