package dev.tokenmeter.edge.proxy;

import dev.tokenmeter.edge.call.MeteredCall;
import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.pricing.TierPricing;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.tokens.RequestEstimate;
import dev.tokenmeter.edge.tokens.StreamUsageTracker;
import dev.tokenmeter.edge.tokens.TokenCounter;
import dev.tokenmeter.edge.tokens.UsageParser;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.validate.UsageEventBounds;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Objects;

/**
 * The last steps of a proxied call: the upstream's answer goes to the caller — an error passed through, a whole
 * answer, or a stream ({@link SseRelay}) — and the call is billed: its one event is published before the answer is
 * complete, its reservation settled after, off the caller's wait.
 */
final class AnswerRelay {

    private static final int MAX_ERROR_BODY_BYTES = 1 << 20;

    private final EdgeMetrics metrics;
    private final TokenCounter tokenCounter;
    private final SseRelay streams;

    private final TierPricing tiers;

    AnswerRelay(EdgeMetrics metrics, TokenCounter tokenCounter, SseRelay streams, TierPricing tiers) {
        this.metrics = metrics;
        this.tokenCounter = tokenCounter;
        this.streams = streams;
        this.tiers = tiers;
    }

    /**
     * What the answer said about the call (ADR 0068, ADR 0085): the model it answered with goes into the event and,
     * when it stands for another priced model than the requested one, bills at that model's row; the tier it reports
     * picks the row's tier (a tier without one: the standard row, flagged {@code unpriced_tier}).
     */
    void priceByAnswer(MeteredCall call, String answeredModel, String reportedTier) {
        // The upstream's word, but it goes into the event: a name outside the model bounds (ADR 0053) is left out.
        call.answeredModel(answeredModel != null && UsageEventBounds.modelProblem("model", answeredModel) == null ? answeredModel : null);
        TierPricing.Answered billing = tiers.forAnswer(call.price(), call.model(), call.answeredModel(), reportedTier, call.occurredAt());
        call.price(billing.price());
        if (billing.unpricedTier() != null) {
            call.attribute(TierPricing.UNPRICED_TIER, billing.unpricedTier());
        }
        if (billing.unpricedAnsweredModel()) {
            call.attribute(TierPricing.UNPRICED_ANSWERED_MODEL, "true");
        }
    }

    /** @param store where a successful answer goes in the response cache (ADR 0074), or null */
    void relayAndBill(ProxyExchange ctx, MeteredCall call, Upstream.Answer answer, RequestEstimate estimate,
                      CachedAnswers.Store store) {
        String contentType = Objects.requireNonNullElse(answer.header("content-type"), "application/json");
        if (answer.status() >= 400) {
            passUpstreamError(ctx, call, answer, contentType);
        } else if (contentType.toLowerCase(Locale.ROOT).startsWith("text/event-stream")) {
            passStream(ctx, call, answer, contentType, estimate, store);
        } else {
            passWhole(ctx, call, answer, contentType, estimate, store);
        }
    }

    /** An upstream error: nothing was produced, so nothing is billed; the body passes through for the SDK to read. */
    private void passUpstreamError(ProxyExchange ctx, MeteredCall call, Upstream.Answer answer, String contentType) {
        byte[] bytes;
        try (InputStream in = answer.body()) {
            bytes = in.readNBytes(MAX_ERROR_BODY_BYTES);
        } catch (IOException e) {
            bytes = OpenAiError.upstreamUnreachable().toJson().getBytes(StandardCharsets.UTF_8);
        }
        call.fail(answer.status(), "upstream_status_" + answer.status());
        metrics.request(call.endpoint(), "failed");
        UpstreamExchange.passHeaders(ctx, answer);
        answerNow(ctx, answer.status(), contentType, bytes);
    }

    /** A whole answer: billed by its reported usage (else the estimate), sent, and only then settled. */
    private void passWhole(ProxyExchange ctx, MeteredCall call, Upstream.Answer answer, String contentType, RequestEstimate estimate,
                           CachedAnswers.Store store) {
        TokenUsage promptOnly = new TokenUsage(estimate.promptTokens(), 0, 0, 0);
        byte[] bytes;
        try (InputStream in = answer.body()) {
            bytes = WholeBodies.readWhole(in, answer.contentLength());
        } catch (IOException e) {
            // The upstream took the call and then dropped it: bill the prompt we sent, the answer is lost.
            call.settle(call.bill(Outcome.FAILED, 502, null, promptOnly));
            metrics.request(call.endpoint(), "failed");
            respondError(ctx, OpenAiError.upstreamUnreachable());
            return;
        }
        UsageParser.Answer said;
        try {
            said = UsageParser.answerOf(bytes);
        } catch (IOException e) {
            said = new UsageParser.Answer(null, null, null); // not JSON: bill the estimate
        }
        TokenUsage reported = said.usage();
        priceByAnswer(call, said.model(), said.serviceTier());
        MeteredCall.Billed billed = call.bill(Outcome.SUCCEEDED, answer.status(), reported, promptOnly);
        metrics.request(call.endpoint(), "succeeded");
        UpstreamExchange.passHeaders(ctx, answer);
        answerNow(ctx, answer.status(), contentType, bytes);
        ctx.finish();
        // Only a whole, billed-by-its-usage answer is given again: never an estimate, never a partial stream.
        if (store != null && answer.status() == 200 && reported != null) {
            store.put(contentType, reported, call.answeredModel(), said.serviceTier(), bytes);
        }
        call.settle(billed);
    }

    /**
     * A stream ({@link SseRelay}). A caller who leaves mid-stream is billed the usage the drain still received
     * (REPORTED, cancelled=client_disconnected): what OpenAI charges, reasoning tokens included. Only when the usage
     * does not come in time (or the upstream fails, or the edge stops) is the call billed ESTIMATED, with
     * {@code drain=<why>}: the prompt estimate plus every completion token streamed, the drained ones included
     * (ADR 0052).
     */
    private void passStream(ProxyExchange ctx, MeteredCall call, Upstream.Answer answer, String contentType,
                            RequestEstimate estimate, CachedAnswers.Store store) {
        StreamUsageTracker tracker = new StreamUsageTracker(call.model(), tokenCounter);
        SseRelay.Capture capture = store == null ? null : new SseRelay.Capture(store.maxBytes());
        SseRelay.Relayed relayed = streams.relay(ctx, answer, contentType, tracker, capture);
        TokenUsage reported = tracker.reportedUsage().orElse(null);
        Outcome outcome;
        if (relayed.clientGone()) {
            outcome = Outcome.CANCELLED;
            call.attribute("cancelled", "client_disconnected");
            if (reported == null && relayed.drainFailure() != null) {
                call.attribute("drain", relayed.drainFailure());
            }
        } else if (relayed.upstreamCut() && reported == null) {
            outcome = Outcome.FAILED;
            call.attribute("failure", "upstream_stream_cut");
        } else {
            outcome = Outcome.SUCCEEDED;
        }
        priceByAnswer(call, tracker.answeredModel(), tracker.serviceTier());
        TokenUsage counted = new TokenUsage(estimate.promptTokens(), 0, tracker.streamedCompletionTokens(), 0);
        MeteredCall.Billed billed = call.bill(outcome, relayed.clientGone() ? 0 : answer.status(), reported, counted);
        metrics.request(call.endpoint(), outcome.name().toLowerCase(Locale.ROOT));
        if (!relayed.clientGone()) {
            try {
                ctx.responseBody().close(); // the stream's end reaches the caller now, not after the settle
            } catch (IOException e) {
                // the caller left right at the end; the call is billed already
            }
        }
        ctx.finish();
        if (capture != null && outcome == Outcome.SUCCEEDED && reported != null && !relayed.upstreamCut() && capture.complete()) {
            store.put(contentType, reported, call.answeredModel(), tracker.serviceTier(), capture.bytes());
        }
        call.settle(billed);
    }

    /** Writes an OpenAI-style error, with {@code x-should-retry: false} where retrying cannot help. */
    static void respondError(ProxyExchange ctx, OpenAiError error) {
        HttpErrors.headers(ctx::header, error);
        answerNow(ctx, error.status(), "application/json", error.toJson().getBytes(StandardCharsets.UTF_8));
    }

    /** Answers {@code status} with a JSON body (an async job's 202). */
    static void respond(ProxyExchange ctx, int status, byte[] json) {
        answerNow(ctx, status, "application/json", json);
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

}
