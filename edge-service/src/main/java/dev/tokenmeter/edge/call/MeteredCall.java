package dev.tokenmeter.edge.call;

import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.http.Rejections;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.publish.EventSink;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.log.LogSafe;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One metered call, from the quota decision to its one {@link UsageEvent}: the proxy's calls and the metering API's
 * reservations and commits go through here alike.
 *
 * <ul>
 *   <li>{@link #reserve}: the quota decision for the call's estimate; when the gate fails, QUOTA_UNAVAILABLE
 *       (retry in 1 s) instead of an exception;</li>
 *   <li>{@link #reject}: a refused call is a call too — one REJECTED event, and the error to answer;</li>
 *   <li>{@link #bill} / {@link #publish}: the event, exactly once per call; when the sink refuses it durably,
 *       {@link SpoolFull} unwinds to the route, which answers 503 (and releases the reservation);</li>
 *   <li>{@link #settle} / {@link #releaseQuietly}: the reservation is settled with the billed cost or given back;
 *       a failure there is logged, never the caller's problem (the reservation expires in the engine).</li>
 * </ul>
 *
 * <p>Money is priced here, as a {@code long} of nano-USD: {@link ModelPrice#costNanoUsd} of the reported usage, or
 * of the locally counted usage when none was reported (usageSource ESTIMATED). Not thread-safe: one call, one thread.
 */
public final class MeteredCall {

    private static final Logger LOG = LoggerFactory.getLogger(MeteredCall.class);
    /** How long a caller should wait when the quota gate itself failed. */
    static final Duration GATE_FAILED_RETRY = Duration.ofSeconds(1);
    /** Attribute: the image input tokens inside promptTokens (gpt-image-1), when there are any (ADR 0085). */
    public static final String IMAGE_INPUT_TOKENS = "image_input_tokens";
    /** Audio input tokens of a transcription (ADR 0088), part of promptTokens, priced by the same column as image input. */
    public static final String AUDIO_INPUT_TOKENS = "audio_input_tokens";

    private final Metering metering;
    private final Caller caller;
    private final String endpoint;
    private final String eventId;
    private final Instant occurredAt;
    private final long startNanos;
    private final Map<String, String> attributes = new HashMap<>();
    /** The caller's attribution labels (x-tokenmeter-tags or the metering API's labels), checked by Labels. */
    private Map<String, String> labels = Map.of();
    private String model = "unknown";
    private boolean streamed;
    private KeySource keySource = KeySource.NONE;
    private ModelPrice price;
    private String upstreamRequestId;
    private String answeredModel;
    private String reservationId;
    private boolean reservationOpen;
    private Long latencyMs;
    private boolean published;
    /** Set when the response cache answered (ADR 0075): the entry's age; the upstream cost is then 0. */
    private Long responseCacheAgeMs;

    MeteredCall(Metering metering, Caller caller, String endpoint, String eventId, Instant occurredAt, long startNanos,
                String reservationId) {
        this.metering = metering;
        this.startNanos = startNanos;
        this.caller = Objects.requireNonNull(caller, "caller");
        this.endpoint = endpoint;
        this.eventId = eventId;
        this.occurredAt = occurredAt;
        this.reservationId = reservationId;
        this.reservationOpen = reservationId != null;
    }

    /** What the proxy billed a call, to settle its reservation with once the answer is out. */
    public record Billed(long costNanoUsd, long tokens) {
    }

    /** The event sink refused the call's event durably (spool full): unwinds to the route, which answers 503. */
    public static final class SpoolFull extends RuntimeException {
        SpoolFull(EventSink.SpoolFullException cause) {
            super(cause.getMessage(), cause, false, false);
        }
    }

    // ---- the call's state ----

    public String eventId() { return eventId; }
    public Caller caller() { return caller; }
    public String endpoint() { return endpoint; }
    public Instant occurredAt() { return occurredAt; }
    public String model() { return model; }
    public boolean streamed() { return streamed; }
    public ModelPrice price() { return price; }
    public boolean published() { return published; }
    public Map<String, String> labels() { return labels; }
    /** The model the answer named, as the event will carry it (null when none, or out of bounds). */
    public String answeredModel() { return answeredModel; }

    public MeteredCall model(String v) { this.model = v; return this; }
    public MeteredCall streamed(boolean v) { this.streamed = v; return this; }
    /** The price the call is billed at; its version goes into the event. */
    public MeteredCall price(ModelPrice v) { this.price = v; return this; }
    public MeteredCall keySource(KeySource v) { this.keySource = v; return this; }
    public MeteredCall upstreamRequestId(String v) { this.upstreamRequestId = v; return this; }
    /** The model the upstream's answer named (a dated snapshot); the event keeps it beside the requested one. */
    public MeteredCall answeredModel(String v) { this.answeredModel = v; return this; }
    /** The call's latency as the caller reports it (metering API), instead of the time since it started here. */
    public MeteredCall latencyMs(long v) { this.latencyMs = v; return this; }
    public MeteredCall attribute(String key, String value) { attributes.put(key, value); return this; }
    /** The call's attribution labels, already within the bounds of {@code Labels} (ADR 0078). */
    public MeteredCall labels(Map<String, String> v) { this.labels = Map.copyOf(v); return this; }

    // ---- quota ----

    /** The quota decision for the call's estimate; the usage alert it raises names this call's event. */
    public Decision reserve(long estimatedCostNanoUsd, long estimatedTokens) {
        return reserve(estimatedCostNanoUsd, estimatedTokens, eventId);
    }

    /**
     * @param alertEventId the event named by a usage alert this decision raises (null when the call's event is not
     *                     this one: a metering reservation's commit event is made later)
     */
    public Decision reserve(long estimatedCostNanoUsd, long estimatedTokens, String alertEventId) {
        Decision decision;
        long start = System.nanoTime();
        try {
            decision = metering.quota().reserve(caller.userId(), caller.apiKeyId(), caller.keyBudgetNanoUsd(), model,
                    estimatedCostNanoUsd, estimatedTokens, alertEventId);
        } catch (RuntimeException e) {
            LOG.warn("quota decision failed for call {} of user {}: {}", eventId, caller.userId(), e.toString());
            decision = QuotaGate.unavailable(GATE_FAILED_RETRY);
        } finally {
            metering.metrics().decision(Duration.ofNanos(System.nanoTime() - start));
        }
        if (decision.admitted()) {
            reservationId = decision.reservationId();
            reservationOpen = reservationId != null;
            if (QuotaGate.failOpen(decision)) {
                metering.metrics().failOpenAdmission();
                attributes.put("fail_open", "true");
            }
        }
        return decision;
    }

    /** The quota refused the call: its one REJECTED event (with the reason), and the error to answer. */
    public OpenAiError reject(Decision decision) {
        OpenAiError error = Rejections.of(decision);
        attributes.put("reject_reason", String.valueOf(decision.rejectReason()));
        publish(Outcome.REJECTED, error.status(), TokenUsage.NONE, 0, UsageSource.REPORTED);
        return error;
    }

    /** Refused before the quota saw it (bad input, unknown model): one REJECTED event with {@code reason}. */
    public void reject(OpenAiError error, String reason) {
        attributes.put("reject_reason", reason);
        publish(Outcome.REJECTED, error.status(), TokenUsage.NONE, 0, UsageSource.REPORTED);
    }

    /** Failed before anything was produced: the reservation back, one FAILED event with {@code reason}. */
    public void fail(int httpStatus, String reason) {
        releaseQuietly();
        attributes.put("failure", reason);
        publish(Outcome.FAILED, httpStatus, TokenUsage.NONE, 0, UsageSource.REPORTED);
    }

    /**
     * A bug on the edge's side: never leave the call unbilled or its reservation dangling. The reservation back,
     * and a FAILED 500 event unless the call published one already.
     */
    public void failedInside() {
        releaseQuietly();
        if (!published) {
            publish(Outcome.FAILED, 500, TokenUsage.NONE, 0, UsageSource.REPORTED);
        }
    }

    // ---- billing ----

    /**
     * Bills the reported usage, or when it never came {@code counted} (usageSource ESTIMATED), at the call's price,
     * and publishes the call's event. Settle the reservation with the result ({@link #settle}) once the answer is
     * out: the event (durable in the spool when Kafka is away) is recorded before the answer, the settle is a Redis
     * round trip the caller need not wait for. Until it runs, the reservation holds the call's estimate against the
     * credit, so nothing is ever admitted past it meanwhile.
     */
    public Billed bill(Outcome outcome, int httpStatus, TokenUsage reported, TokenUsage counted) {
        TokenUsage usage = reported != null ? reported : counted;
        UsageSource source = reported != null ? UsageSource.REPORTED : UsageSource.ESTIMATED;
        long cost = price.costNanoUsd(usage);
        publish(outcome, httpStatus, usage, cost, source);
        return new Billed(cost, usage.totalTokens());
    }

    /**
     * A response-cache hit (ADR 0075): one SUCCEEDED event for the cached answer's usage, billed {@code billedNanoUsd}
     * (the plan's share of the full price), with the entry's age and an upstream cost of 0.
     */
    public Billed billCacheHit(int httpStatus, TokenUsage usage, long billedNanoUsd, long entryAgeMs) {
        responseCacheAgeMs = entryAgeMs;
        publish(Outcome.SUCCEEDED, httpStatus, usage, billedNanoUsd, UsageSource.REPORTED);
        return new Billed(billedNanoUsd, usage.totalTokens());
    }

    /** Settles the open reservation with what was billed; quietly (a failure is logged, the reservation expires). */
    public void settle(Billed billed) {
        if (!reservationOpen) {
            return;
        }
        try {
            metering.quota().settle(reservationId, billed.costNanoUsd(), billed.tokens(), eventId);
            reservationOpen = false;
        } catch (RuntimeException e) {
            LOG.warn("settling reservation {} of call {} failed: {}", reservationId, eventId, e.toString());
        }
    }

    /** Gives the open reservation back, if there is one; quietly. */
    public void releaseQuietly() {
        if (!reservationOpen) {
            return;
        }
        reservationOpen = false;
        metering.releaseQuietly(reservationId, eventId);
    }

    /**
     * Publishes the call's one event; a second call does nothing.
     *
     * @throws SpoolFull the sink refused the event durably
     */
    public void publish(Outcome outcome, int httpStatus, TokenUsage usage, long costNanoUsd, UsageSource source) {
        if (published) {
            return;
        }
        published = true;
        if (usage.imageInputTokens() > 0) {
            // Part of promptTokens priced apart (ADR 0085); kept so the cost stays re-derivable from the event.
            attributes.put(endpoint.startsWith("/v1/audio/") ? AUDIO_INPUT_TOKENS : IMAGE_INPUT_TOKENS,
                    Long.toString(usage.imageInputTokens()));
        }
        UsageEvent event = event(outcome, httpStatus, usage, costNanoUsd, source);
        if (outcome != Outcome.SUCCEEDED) {
            // Ids, model and status only: never a key, never prompt text.
            LOG.info("call {} user {} {} model={} outcome={} status={} reason={}", eventId, caller.userId(), endpoint,
                    LogSafe.of(model), outcome, httpStatus, attributes);
        }
        try {
            metering.submitChecked(event);
        } catch (EventSink.SpoolFullException e) {
            // The caller's answer may already be on the wire (streams), so say it loudly.
            LOG.error("usage event {} for user {} could not be recorded: spool full", eventId, caller.userId());
            throw new SpoolFull(e);
        }
    }

    private UsageEvent event(Outcome outcome, int httpStatus, TokenUsage usage, long costNanoUsd, UsageSource source) {
        return UsageEvent.newBuilder()
                .setEventId(eventId)
                .setOccurredAt(occurredAt)
                .setReceivedAt(metering.now())
                .setTenantId(caller.tenantId())
                .setUserId(caller.userId())
                .setApiKeyId(caller.apiKeyId())
                .setKeySource(outcome == Outcome.REJECTED ? KeySource.NONE : keySource)
                .setProvider("openai")
                .setModel(model)
                .setEndpoint(endpoint)
                .setUpstreamRequestId(upstreamRequestId)
                .setOutcome(outcome)
                .setHttpStatus(httpStatus)
                .setPromptTokens(usage.promptTokens())
                .setCachedPromptTokens(usage.cachedPromptTokens())
                .setCompletionTokens(usage.completionTokens())
                .setReasoningTokens(usage.reasoningTokens())
                .setCostNanoUsd(costNanoUsd)
                .setPriceVersion(price == null ? null : price.priceVersion())
                .setUsageSource(source)
                .setStreamed(streamed)
                .setCacheHit(usage.cachedPromptTokens() > 0)
                .setReservationId(reservationId)
                .setLatencyMs(latencyMs != null ? latencyMs : Math.max(0, (System.nanoTime() - startNanos) / 1_000_000))
                .setEdgeInstance(metering.edgeInstance())
                .setAttributes(Map.copyOf(attributes))
                .setAnsweredModel(answeredModel)
                // The tier of the row that priced the call (ADR 0068); none when nothing was priced.
                .setServiceTier(price == null ? null : price.tier().dbName())
                .setResponseCacheHit(responseCacheAgeMs != null)
                .setResponseCacheAgeMs(responseCacheAgeMs)
                // null means "what it was billed" (ADR 0075): only a cache hit cost the upstream something else.
                .setUpstreamCostNanoUsd(responseCacheAgeMs != null ? Long.valueOf(0L) : null)
                // v4 (ADR 0078): the key's project (the operator's), the caller's labels.
                .setProject(caller.project())
                .setLabels(labels)
                .build();
    }
}
