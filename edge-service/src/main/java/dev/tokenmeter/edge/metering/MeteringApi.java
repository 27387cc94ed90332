package dev.tokenmeter.edge.metering;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.call.MeteredCall;
import dev.tokenmeter.edge.call.Metering;
import dev.tokenmeter.edge.http.Callers;
import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.http.QuotaHeaders;
import dev.tokenmeter.edge.http.Rejections;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.edge.pricing.ServiceTier;
import dev.tokenmeter.edge.pricing.TierPricing;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.edge.responsecache.CachePolicy;
import dev.tokenmeter.events.validate.Labels;
import dev.tokenmeter.events.validate.UsageEventBounds;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import io.lettuce.core.SetArgs;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;

import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Predicate;

import static dev.tokenmeter.edge.metering.MeteringRequests.ApiError;
import static dev.tokenmeter.edge.metering.MeteringRequests.Counts;
import static dev.tokenmeter.edge.metering.MeteringRequests.constant;
import static dev.tokenmeter.edge.metering.MeteringRequests.DEFAULT_ENDPOINT;
import static dev.tokenmeter.edge.metering.MeteringRequests.JSON;
import static dev.tokenmeter.edge.metering.MeteringRequests.MARKER_TTL_SECONDS;
import static dev.tokenmeter.edge.metering.MeteringRequests.bad;
import static dev.tokenmeter.edge.metering.MeteringRequests.body;
import static dev.tokenmeter.edge.metering.MeteringRequests.bounded;
import static dev.tokenmeter.edge.metering.MeteringRequests.commitKey;
import static dev.tokenmeter.edge.metering.MeteringRequests.intOr;
import static dev.tokenmeter.edge.metering.MeteringRequests.notFound;
import static dev.tokenmeter.edge.metering.MeteringRequests.reservationKey;
import static dev.tokenmeter.edge.metering.MeteringRequests.serviceTier;
import static dev.tokenmeter.edge.metering.MeteringRequests.text;
import static dev.tokenmeter.edge.metering.MeteringRequests.tokens;

/**
 * The metering API, for app servers that call OpenAI themselves; every route takes a service key
 * ({@code Authorization: Bearer tm_...}) and answers errors in OpenAI's error shape.
 *
 * <pre>
 * POST /v1/metering/reservations                 reserve an estimate: decision, reservation id, rate-limit headers
 * POST /v1/metering/reservations/{id}/commit     actual usage: cost from the price book, exactly one UsageEvent
 * POST /v1/metering/reservations/{id}/release    the call did not happen: give the reservation back
 * POST /v1/metering/usage:batch                  already-finished calls with caller-chosen UUID event ids
 * </pre>
 *
 * <p><b>Commit exactly once.</b> The event id of a commit is {@code UUID.nameUUIDFromBytes("tokenmeter-commit:" +
 * reservationId)}: every attempt to commit the same reservation produces the same id, whatever happens in between,
 * and the ledger dedups by event id. A Redis marker (written after the event was accepted by the sink, kept 24 h)
 * makes a repeated commit answer with the first commit's event id without publishing or settling again. If the edge
 * dies between accepting the event and writing the marker, a retried commit publishes the same event id again;
 * the ledger keeps one.
 *
 * <p><b>Caller-chosen ids are scoped to their user.</b> A batch event's stored id is {@link CallerEventIds#stored}
 * (a UUIDv5 of the caller's id in the user's namespace), answered as {@code event_id} beside the caller's
 * {@code caller_event_id} (also kept in the event's attributes): the same caller id from two users bills both, from
 * one user once.
 *
 * <p><b>Batch ingest</b> has its own rules and idempotency: {@link BatchIngest}.
 *
 * <p>Why over 300 lines (issue 15 asks): three routes of one resource, the reservation — reserve, commit, release —
 * each a short step sequence over {@link Metering} and {@link MeteringRequests}; they share the commit marker and the
 * caller checks, so splitting them would spread one idempotency rule over three files.
 */
public final class MeteringApi {

    public static final int MAX_BATCH = BatchIngest.MAX_BATCH;

    private final Authenticator authenticator;
    private final PriceBook priceBook;
    private final Metering metering;
    private final RedisClusterCommands<String, String> redis;
    private final Duration reservationTtl;
    private final BatchIngest batch;

    /**
     * @param metering         the metered-call core (quota gate, event sink), shared with the proxy
     * @param hasPersonalKey   whether a user has an own provider key (batch events with key_source PERSONAL_KEY are
     *                         accepted only then)
     * @param batchMaxEventAge the oldest occurred_at batch ingest accepts (BATCH_MAX_EVENT_AGE)
     */
    public MeteringApi(Authenticator authenticator, PriceBook priceBook, Metering metering, RedisClusterCommands<String, String> redis,
                       String edgeInstance, Duration reservationTtl, Clock clock, Predicate<String> hasPersonalKey,
                       Duration batchMaxEventAge) {
        this.authenticator = authenticator;
        this.priceBook = priceBook;
        this.metering = metering;
        this.redis = redis;
        this.reservationTtl = reservationTtl;
        this.batch = new BatchIngest(metering, priceBook, redis, edgeInstance, clock, hasPersonalKey, batchMaxEventAge);
    }

    public void routes(RoutesConfig r) {
        r.post("/v1/metering/reservations", ctx -> guarded(ctx, this::reserve));
        r.post("/v1/metering/reservations/{id}/commit", ctx -> guarded(ctx, this::commit));
        r.post("/v1/metering/reservations/{id}/release", ctx -> guarded(ctx, this::release));
        r.post("/v1/metering/usage:batch", ctx -> guarded(ctx, batch::handle));
    }

    /** The event id of the commit of {@code reservationId}: the same for every attempt. */
    public static String commitEventId(String reservationId) {
        return UUID.nameUUIDFromBytes(("tokenmeter-commit:" + reservationId).getBytes(StandardCharsets.UTF_8)).toString();
    }

    private interface CallerHandler {
        void handle(Context ctx, Caller caller) throws Exception;
    }

    private void guarded(Context ctx, CallerHandler h) throws Exception {
        Optional<Caller> caller = Callers.active(ctx, authenticator);
        if (caller.isEmpty()) {
            return;
        }
        try {
            h.handle(ctx, caller.get());
        } catch (ApiError e) {
            // Bad input counts against the caller's rate limit like a call: a flood of it is cut off with 429.
            Optional<Decision> limited = e.error.status() / 100 == 4 && e.error.status() != 429
                    ? metering.quota().rateLimitedRejection(caller.get().userId(), caller.get().apiKeyId()) : Optional.empty();
            if (limited.isPresent()) {
                QuotaHeaders.set(ctx::header, limited.get());
                HttpErrors.respond(ctx, Rejections.of(limited.get()));
                return;
            }
            HttpErrors.respond(ctx, e.error);
        } catch (MeteredCall.SpoolFull e) {
            HttpErrors.respond(ctx, OpenAiError.spoolFull());
        }
    }

    // ---- reserve ----

    private void reserve(Context ctx, Caller caller) {
        JsonNode b = body(ctx);
        String model = text(b, "model");
        if (model == null || model.isBlank()) {
            throw bad("'model' is required.", "model");
        }
        // Bounds first: nothing out of them reaches an event, a Redis key or a log line (issue 14, finding 1).
        bounded(UsageEventBounds.modelProblem("model", model), "model");
        String endpoint = Optional.ofNullable(text(b, "endpoint")).orElse(DEFAULT_ENDPOINT);
        bounded(UsageEventBounds.endpointProblem("endpoint", endpoint), "endpoint");
        Map<String, String> labels = MeteringRequests.labels(ctx, b);
        List<String> problems = new ArrayList<>();
        long prompt = tokens(b, "estimated_prompt_tokens", problems);
        long completion = tokens(b, "max_completion_tokens", problems);
        if (!problems.isEmpty()) {
            throw bad(problems);
        }
        // The tier the app server will ask OpenAI for: the estimate's price; the commit bills the tier OpenAI reported.
        ServiceTier tier = ServiceTier.requested(serviceTier(b));
        MeteredCall call = metering.start(caller, endpoint).model(model).latencyMs(0).attribute("source", "metering_api")
                .labels(labels);
        Instant now = call.occurredAt();
        ModelPrice price = priced(model, tier, now);
        if (!caller.models().admits(model, priceBook.resolvedModel(model, now))) {
            // Outside the plan's or key's allow-list (ADR 0077): one REJECTED event, as the proxy publishes.
            OpenAiError error = OpenAiError.modelNotAllowed(model);
            call.reject(error, "model_not_allowed");
            ctx.header(QuotaHeaders.EVENT_ID, call.eventId());
            HttpErrors.respond(ctx, error);
            return;
        }
        long estimatedCost = price.costNanoUsd(new TokenUsage(prompt, 0, completion, 0));
        // The commit's event id derives from the reservation id, not known before: an alert at reserve names none.
        Decision d = call.reserve(estimatedCost, prompt + completion, null);
        QuotaHeaders.set(ctx::header, d);
        if (!d.admitted()) {
            // A rejected call is a call too: one REJECTED event, as the proxy publishes (without a price version:
            // the app server's call never happened).
            OpenAiError error = call.reject(d);
            ctx.header(QuotaHeaders.EVENT_ID, call.eventId());
            HttpErrors.respond(ctx, error);
            return;
        }
        Map<String, String> fields = new HashMap<>();
        fields.put("tenant_id", caller.tenantId());
        fields.put("api_key_id", caller.apiKeyId());
        fields.put("model", model);
        fields.put("endpoint", endpoint);
        fields.put("route", d.route().name());
        fields.put("service_tier", tier.dbName());
        fields.put("occurred_at_ms", Long.toString(now.toEpochMilli()));
        // Attribution (ADR 0078): the reserving key's project; the labels given here, unless the commit gives its own.
        if (caller.project() != null) {
            fields.put("project", caller.project());
        }
        fields.put("labels", Labels.format(labels));
        String key = reservationKey(caller.userId(), d.reservationId());
        redis.hset(key, fields);
        redis.expire(key, reservationTtl.toSeconds());
        ObjectNode n = JSON.createObjectNode();
        n.put("reservation_id", d.reservationId());
        n.put("route", d.route().name());
        n.put("estimated_cost_nano_usd", estimatedCost);
        Long remainingCredit = QuotaHeaders.remainingCreditNanoUsd(d);
        if (remainingCredit != null) {
            n.put("remaining_credit_usd", Money.formatUsd(remainingCredit));
        }
        n.put("soft_limit_reached", d.softLimit().reached());
        if (d.softLimit().reached() && d.softLimit().percent() > 0) {
            n.put("soft_limit_percent", d.softLimit().percent());
        }
        n.put("expires_at", now.plus(reservationTtl).toString());
        n.put("event_id", commitEventId(d.reservationId()));
        ctx.status(201).contentType("application/json").result(n.toString());
    }

    // ---- commit ----

    private void commit(Context ctx, Caller caller) {
        String reservationId = ctx.pathParam("id");
        bounded(UsageEventBounds.reservationIdProblem("reservation_id", reservationId), "reservation_id");
        String eventId = commitEventId(reservationId);
        String committed = redis.get(commitKey(caller.userId(), reservationId));
        if (committed != null) {
            ctx.header(QuotaHeaders.EVENT_ID, committed);
            ObjectNode n = JSON.createObjectNode();
            n.put("reservation_id", reservationId);
            n.put("event_id", committed);
            n.put("already_committed", true);
            ctx.status(200).contentType("application/json").result(n.toString());
            return;
        }
        Map<String, String> r = redis.hgetall(reservationKey(caller.userId(), reservationId));
        if (r == null || r.isEmpty()) {
            throw notFound("No open reservation '" + reservationId + "' for this key's user (unknown, released or expired).");
        }
        JsonNode b = body(ctx);
        Map<String, String> labels = MeteringRequests.labels(ctx, b);
        if (labels.isEmpty() && r.get("labels") != null) {
            labels = Labels.parseHeader(r.get("labels")); // checked at reserve
        }
        List<String> problems = new ArrayList<>();
        Counts counts = Counts.of(b, problems);
        Outcome outcome = constant(b, "outcome", Outcome.class, Outcome.SUCCEEDED, "outcome must be SUCCEEDED, FAILED or CANCELLED", problems);
        if (outcome == Outcome.REJECTED) {
            problems.add("outcome must be SUCCEEDED, FAILED or CANCELLED");
        }
        if (counts.cached() > counts.prompt()) {
            problems.add("cached_prompt_tokens exceeds prompt_tokens");
        }
        if (counts.reasoning() > counts.completion()) {
            problems.add("reasoning_tokens exceeds completion_tokens");
        }
        if (!problems.isEmpty()) {
            throw bad(problems);
        }
        String upstreamRequestId = text(b, "upstream_request_id");
        if (upstreamRequestId != null) {
            bounded(UsageEventBounds.upstreamRequestIdProblem("upstream_request_id", upstreamRequestId), "upstream_request_id");
        }
        int httpStatus = intOr(b, "http_status", outcome == Outcome.SUCCEEDED ? 200 : 0);
        if (httpStatus != 0 && (httpStatus < 100 || httpStatus > 599)) {
            throw bad("http_status must be 0 or 100..599, got " + httpStatus, "http_status");
        }
        String model = r.get("model");
        String answeredModel = text(b, "answered_model");
        if (answeredModel != null) {
            bounded(UsageEventBounds.modelProblem("answered_model", answeredModel), "answered_model");
        }
        String reportedTier = serviceTier(b);
        Instant occurredAt = Instant.ofEpochMilli(Long.parseLong(r.get("occurred_at_ms")));
        // Reservations made before tiers existed carry none: they were estimated at standard.
        ServiceTier estimatedTier = ServiceTier.ofDbName(r.get("service_tier")).orElse(ServiceTier.STANDARD);
        TierPricing.Billing billing = new TierPricing(priceBook).forReported(priced(model, estimatedTier, occurredAt),
                reportedTier, occurredAt);
        ModelPrice price = billing.price();
        TokenUsage usage = counts.usage();
        long cost = price.costNanoUsd(usage);
        bounded(UsageEventBounds.costProblem("cost_nano_usd", cost), "prompt_tokens");
        KeySource keySource = "PERSONAL_KEY".equals(r.get("route")) ? KeySource.PERSONAL_KEY : KeySource.SERVICE_CREDIT;
        Caller reserving = new Caller(r.get("api_key_id"), caller.userId(), r.get("tenant_id"), true, CachePolicy.OFF,
                dev.tokenmeter.edge.auth.ModelAllowList.ANY, false, r.get("project"));
        MeteredCall call = metering.resume(reserving, r.get("endpoint"), eventId, occurredAt, reservationId)
                .model(model).price(price).keySource(keySource).upstreamRequestId(upstreamRequestId).latencyMs(counts.latencyMs())
                .answeredModel(answeredModel).streamed(b.path("streamed").asBoolean(false)).attribute("source", "metering_api")
                .labels(labels);
        if (billing.unpricedTier() != null) {
            call.attribute(TierPricing.UNPRICED_TIER, billing.unpricedTier());
        }
        // Settled before the event: when an earlier attempt settled and died before its marker, this settle fails
        // (logged) and the event below is the same one again, which the ledger dedups.
        call.settle(new MeteredCall.Billed(cost, usage.totalTokens()));
        call.publish(outcome, httpStatus, usage, cost, UsageSource.REPORTED);
        // The marker only after the sink accepted the event it guards.
        redis.set(commitKey(caller.userId(), reservationId), eventId, SetArgs.Builder.ex(MARKER_TTL_SECONDS));
        redis.del(reservationKey(caller.userId(), reservationId));
        ctx.header(QuotaHeaders.EVENT_ID, eventId);
        ObjectNode n = JSON.createObjectNode();
        n.put("reservation_id", reservationId);
        n.put("event_id", eventId);
        n.put("already_committed", false);
        n.put("cost_nano_usd", cost);
        n.put("cost_usd", Money.formatUsd(cost));
        n.put("price_version", price.priceVersion());
        n.put("service_tier", price.tier().dbName());
        ctx.status(200).contentType("application/json").result(n.toString());
    }

    /**
     * The price of {@code model} in {@code tier} at {@code at}; a 400 when the model has none ({@code model_not_found})
     * or is priced but not in that tier ({@code service_tier_not_priced}), as the proxy answers.
     */
    private ModelPrice priced(String model, ServiceTier tier, Instant at) {
        return priceBook.priceAt(model, tier, at).orElseThrow(() -> new ApiError(
                tier != ServiceTier.STANDARD && priceBook.priceAt(model, at).isPresent()
                        ? OpenAiError.serviceTierNotPriced(model, tier.dbName()) : OpenAiError.modelNotFound(model)));
    }

    // ---- release ----

    private void release(Context ctx, Caller caller) {
        String reservationId = ctx.pathParam("id");
        bounded(UsageEventBounds.reservationIdProblem("reservation_id", reservationId), "reservation_id");
        if (redis.exists(commitKey(caller.userId(), reservationId)) > 0) {
            throw new ApiError(new OpenAiError(409, "Reservation '" + reservationId + "' was committed; it cannot be released.",
                    "invalid_request_error", null, "reservation_committed", false, null));
        }
        // DEL returns 1 for exactly one of two concurrent releases: the reservation is given back once.
        if (redis.del(reservationKey(caller.userId(), reservationId)) == 0) {
            throw notFound("No open reservation '" + reservationId + "' for this key's user (unknown, released or expired).");
        }
        metering.releaseQuietly(reservationId, commitEventId(reservationId));
        ObjectNode n = JSON.createObjectNode();
        n.put("reservation_id", reservationId);
        n.put("released", true);
        ctx.status(200).contentType("application/json").result(n.toString());
    }

}
