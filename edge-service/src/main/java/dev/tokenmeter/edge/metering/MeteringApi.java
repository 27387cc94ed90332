package dev.tokenmeter.edge.metering;

import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.Callers;
import dev.tokenmeter.edge.http.QuotaHeaders;
import dev.tokenmeter.edge.http.Rejections;
import dev.tokenmeter.edge.call.QuotaGate;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.publish.EventSink;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.events.validate.UsageEventBounds;
import dev.tokenmeter.events.validate.UsageEventValidator;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import io.lettuce.core.SetArgs;
import io.lettuce.core.api.sync.RedisCommands;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Predicate;

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
 * <p><b>Batch rules</b> (issue 14, finding 4): {@code occurred_at} no older than {@code BATCH_MAX_EVENT_AGE} (below the
 * aggregator's dedup retention, so a resend is always deduplicated; older prices and closed periods are out of
 * reach) and no more than {@link #BATCH_MAX_CLOCK_SKEW} ahead; {@code key_source} PERSONAL_KEY only for a user with a
 * personal key; REJECTED only with zero tokens. A batch is rate limited like calls (see {@code QuotaGate#admit}).
 *
 * <p><b>Batch idempotency.</b> Events carry ids derived from the caller's UUIDs. Ids accepted in the last 24 h are remembered in
 * Redis (per user, written after the sink accepted the event) and not re-published; past that window a resent
 * event is published again with the same id and identical content (the price is the row in force at its
 * occurredAt, and rows are append-only), and the ledger dedups it.
 */
public final class MeteringApi {

    private static final Logger LOG = LoggerFactory.getLogger(MeteringApi.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final int MAX_BATCH = 1_000;
    private static final long MARKER_TTL_SECONDS = Duration.ofHours(24).toSeconds();
    private static final String DEFAULT_ENDPOINT = "/v1/chat/completions";
    /** How far in the future a batch event's occurred_at may be: the caller's clock may run ahead of ours. */
    static final Duration BATCH_MAX_CLOCK_SKEW = Duration.ofMinutes(5);

    private final Authenticator authenticator;
    private final PriceBook priceBook;
    private final QuotaGate quota;
    private final EventSink sink;
    private final RedisCommands<String, String> redis;
    private final String edgeInstance;
    private final Duration reservationTtl;
    private final Clock clock;
    private final Predicate<String> hasPersonalKey;
    private final Duration batchMaxEventAge;

    /**
     * @param hasPersonalKey   whether a user has an own provider key (batch events with key_source PERSONAL_KEY are
     *                         accepted only then)
     * @param batchMaxEventAge the oldest occurred_at batch ingest accepts (BATCH_MAX_EVENT_AGE)
     */
    public MeteringApi(Authenticator authenticator, PriceBook priceBook, QuotaGate quota, EventSink sink,
                       RedisCommands<String, String> redis, String edgeInstance, Duration reservationTtl, Clock clock,
                       Predicate<String> hasPersonalKey, Duration batchMaxEventAge) {
        this.hasPersonalKey = hasPersonalKey;
        this.batchMaxEventAge = batchMaxEventAge;
        this.authenticator = authenticator;
        this.priceBook = priceBook;
        this.quota = quota;
        this.sink = sink;
        this.redis = redis;
        this.edgeInstance = edgeInstance;
        this.reservationTtl = reservationTtl;
        this.clock = clock;
    }

    public void routes(RoutesConfig r) {
        r.post("/v1/metering/reservations", ctx -> guarded(ctx, this::reserve));
        r.post("/v1/metering/reservations/{id}/commit", ctx -> guarded(ctx, this::commit));
        r.post("/v1/metering/reservations/{id}/release", ctx -> guarded(ctx, this::release));
        r.post("/v1/metering/usage:batch", ctx -> guarded(ctx, this::batch));
    }

    /** The event id of the commit of {@code reservationId}: the same for every attempt. */
    public static String commitEventId(String reservationId) {
        return UUID.nameUUIDFromBytes(("tokenmeter-commit:" + reservationId).getBytes(StandardCharsets.UTF_8)).toString();
    }

    private interface CallerHandler {
        void handle(Context ctx, Caller caller) throws Exception;
    }

    static final class ApiError extends RuntimeException {
        final OpenAiError error;

        ApiError(OpenAiError error) {
            super(error.message(), null, false, false);
            this.error = error;
        }
    }

    private static ApiError bad(String message, String param) {
        return new ApiError(OpenAiError.invalidRequest(message, param));
    }

    /** A 400 naming {@code param} when {@code problem} (a bounds check of ADR 0053) is not null. */
    private static void bounded(String problem, String param) {
        if (problem != null) {
            throw bad(problem, param);
        }
    }

    /** Problems joined; the param is the field the first problem starts with. */
    private static ApiError bad(List<String> problems) {
        String first = problems.get(0);
        return bad(String.join("; ", problems), first.substring(0, Math.max(0, first.indexOf(' '))));
    }

    private static ApiError notFound(String message) {
        return new ApiError(new OpenAiError(404, message, "invalid_request_error", null, "reservation_not_found", false, null));
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
                    ? quota.rateLimitedRejection(caller.get().userId(), caller.get().apiKeyId()) : Optional.empty();
            if (limited.isPresent()) {
                QuotaHeaders.set(ctx::header, limited.get());
                HttpErrors.respond(ctx, Rejections.of(limited.get()));
                return;
            }
            HttpErrors.respond(ctx, e.error);
        } catch (EventSink.SpoolFullException e) {
            HttpErrors.respond(ctx, OpenAiError.spoolFull());
        }
    }

    private static JsonNode body(Context ctx) {
        try {
            JsonNode n = JSON.readTree(ctx.bodyAsBytes());
            if (n == null || !n.isObject()) {
                throw bad("The body must be a JSON object.", null);
            }
            return n;
        } catch (java.io.IOException e) {
            throw bad("We could not parse the JSON body of your request.", null);
        }
    }

    private static long tokens(JsonNode b, String field, List<String> problems) {
        JsonNode n = b.get(field);
        if (n == null || n.isNull()) {
            return 0;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong() || n.asLong() < 0) {
            problems.add(field + " must be a non-negative integer");
            return 0;
        }
        String tooLarge = UsageEventBounds.tokensProblem(field, n.asLong());
        if (tooLarge != null) {
            problems.add(tooLarge);
            return 0;
        }
        return n.asLong();
    }

    private static String text(JsonNode b, String field) {
        JsonNode n = b.get(field);
        return n == null || n.isNull() ? null : n.asText();
    }

    private String reservationKey(String userId, String reservationId) {
        return "tm:meter:{u:" + userId + "}:res:" + reservationId;
    }

    private String commitKey(String userId, String reservationId) {
        return "tm:meter:{u:" + userId + "}:committed:" + reservationId;
    }

    private String seenKey(String userId, String eventId) {
        return "tm:meter:{u:" + userId + "}:seen:" + eventId;
    }

    // ---- reserve ----

    private void reserve(Context ctx, Caller caller) throws EventSink.SpoolFullException {
        JsonNode b = body(ctx);
        String model = text(b, "model");
        if (model == null || model.isBlank()) {
            throw bad("'model' is required.", "model");
        }
        // Bounds first: nothing out of them reaches an event, a Redis key or a log line (issue 14, finding 1).
        bounded(UsageEventBounds.modelProblem("model", model), "model");
        String endpoint = Optional.ofNullable(text(b, "endpoint")).orElse(DEFAULT_ENDPOINT);
        bounded(UsageEventBounds.endpointProblem("endpoint", endpoint), "endpoint");
        List<String> problems = new ArrayList<>();
        long prompt = tokens(b, "estimated_prompt_tokens", problems);
        long completion = tokens(b, "max_completion_tokens", problems);
        if (!problems.isEmpty()) {
            throw bad(problems);
        }
        Instant now = clock.instant();
        ModelPrice price = priceBook.priceAt(model, now).orElseThrow(() -> new ApiError(OpenAiError.modelNotFound(model)));
        long estimatedCost = price.costNanoUsd(new TokenUsage(prompt, 0, completion, 0));
        Decision d;
        try {
            // The commit's event id derives from the reservation id, not known before: an alert at reserve names none.
            d = quota.reserve(caller.userId(), caller.apiKeyId(), model, estimatedCost, prompt + completion, null);
        } catch (RuntimeException e) {
            LOG.warn("quota decision failed for a metering reservation of user {}: {}", caller.userId(), e.toString());
            d = QuotaGate.unavailable(Duration.ofSeconds(1));
        }
        QuotaHeaders.set(ctx::header, d);
        if (!d.admitted()) {
            // A rejected call is a call too: one REJECTED event, as the proxy publishes.
            UsageEvent rejected = event(UUID.randomUUID().toString(), caller, model, endpoint, now, KeySource.NONE,
                    Outcome.REJECTED, Rejections.of(d).status(), TokenUsage.NONE, 0, null, null,
                    Map.of("reject_reason", String.valueOf(d.rejectReason()), "source", "metering_api"));
            sink.submit(rejected);
            ctx.header(QuotaHeaders.EVENT_ID, rejected.getEventId());
            HttpErrors.respond(ctx, Rejections.of(d));
            return;
        }
        Map<String, String> fields = new HashMap<>();
        fields.put("tenant_id", caller.tenantId());
        fields.put("api_key_id", caller.apiKeyId());
        fields.put("model", model);
        fields.put("endpoint", endpoint);
        fields.put("route", d.route().name());
        fields.put("occurred_at_ms", Long.toString(now.toEpochMilli()));
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

    private void commit(Context ctx, Caller caller) throws EventSink.SpoolFullException {
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
        List<String> problems = new ArrayList<>();
        long prompt = tokens(b, "prompt_tokens", problems);
        long cached = tokens(b, "cached_prompt_tokens", problems);
        long completion = tokens(b, "completion_tokens", problems);
        long reasoning = tokens(b, "reasoning_tokens", problems);
        long latencyMs = tokens(b, "latency_ms", problems);
        Outcome outcome = Outcome.SUCCEEDED;
        if (b.hasNonNull("outcome")) {
            try {
                outcome = Outcome.valueOf(b.get("outcome").asText());
            } catch (IllegalArgumentException e) {
                problems.add("outcome must be SUCCEEDED, FAILED or CANCELLED");
            }
            if (outcome == Outcome.REJECTED) {
                problems.add("outcome must be SUCCEEDED, FAILED or CANCELLED");
            }
        }
        if (cached > prompt) {
            problems.add("cached_prompt_tokens exceeds prompt_tokens");
        }
        if (reasoning > completion) {
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
        Instant occurredAt = Instant.ofEpochMilli(Long.parseLong(r.get("occurred_at_ms")));
        ModelPrice price = priceBook.priceAt(model, occurredAt).orElseThrow(() -> new ApiError(OpenAiError.modelNotFound(model)));
        TokenUsage usage = new TokenUsage(prompt, cached, completion, reasoning);
        long cost = price.costNanoUsd(usage);
        bounded(UsageEventBounds.costProblem("cost_nano_usd", cost), "prompt_tokens");
        try {
            quota.settle(reservationId, cost, usage.totalTokens(), eventId);
        } catch (RuntimeException e) {
            // Already settled by an earlier attempt that died before its marker; the event below is the same one.
            LOG.warn("settling metering reservation {} failed: {}", reservationId, e.toString());
        }
        KeySource keySource = "PERSONAL_KEY".equals(r.get("route")) ? KeySource.PERSONAL_KEY : KeySource.SERVICE_CREDIT;
        Map<String, String> attributes = new HashMap<>();
        attributes.put("source", "metering_api");
        UsageEvent event = event(eventId, new Caller(r.get("api_key_id"), caller.userId(), r.get("tenant_id")), model,
                r.get("endpoint"), occurredAt, keySource, outcome, httpStatus,
                usage, cost, price.priceVersion(), upstreamRequestId, attributes);
        event.setLatencyMs(latencyMs);
        event.setReservationId(reservationId);
        event.setStreamed(b.path("streamed").asBoolean(false));
        sink.submit(event);
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
        ctx.status(200).contentType("application/json").result(n.toString());
    }

    private static int intOr(JsonNode b, String field, int fallback) {
        JsonNode n = b.get(field);
        return n != null && n.canConvertToInt() ? n.asInt() : fallback;
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
        try {
            quota.release(reservationId);
        } catch (RuntimeException e) {
            LOG.warn("releasing metering reservation {} failed: {}", reservationId, e.toString());
        }
        ObjectNode n = JSON.createObjectNode();
        n.put("reservation_id", reservationId);
        n.put("released", true);
        ctx.status(200).contentType("application/json").result(n.toString());
    }

    // ---- batch ----

    private void batch(Context ctx, Caller caller) throws EventSink.SpoolFullException {
        JsonNode b = body(ctx);
        JsonNode items = b.get("events");
        if (items == null || !items.isArray() || items.isEmpty()) {
            throw bad("'events' must be a non-empty array.", "events");
        }
        if (items.size() > MAX_BATCH) {
            throw bad("At most " + MAX_BATCH + " events per batch, got " + items.size() + ".", "events");
        }
        Instant now = clock.instant();
        List<UsageEvent> events = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        LinkedHashSet<String> ids = new LinkedHashSet<>();
        Boolean personalKey = null; // looked up once, for the first PERSONAL_KEY event
        for (int i = 0; i < items.size(); i++) {
            JsonNode item = items.get(i);
            List<String> own = new ArrayList<>();
            UsageEvent e = parseBatchItem(item, caller, now, own);
            if (e != null && e.getKeySource() == KeySource.PERSONAL_KEY) {
                if (personalKey == null) {
                    personalKey = hasPersonalKey.test(caller.userId());
                }
                if (!personalKey) {
                    own.add("key_source PERSONAL_KEY, but this user has no personal key");
                }
            }
            if (e != null) {
                own.addAll(UsageEventValidator.problems(e));
                if (!ids.add(e.getEventId())) {
                    own.add("event_id " + text(item, "event_id") + " appears twice in this batch");
                }
            }
            for (String p : own) {
                problems.add("events[" + i + "]: " + p);
            }
            events.add(e);
        }
        if (!problems.isEmpty()) {
            // Nothing of a bad batch is published: the caller fixes it and resends the whole batch.
            throw new ApiError(new OpenAiError(400, String.join("; ", problems), "invalid_request_error", "events", "invalid_usage_events", false, null));
        }
        List<String> keys = events.stream().map(e -> seenKey(caller.userId(), e.getEventId())).toList();
        List<io.lettuce.core.KeyValue<String, String>> seen = redis.mget(keys.toArray(String[]::new));
        // Ingest is rate limited like calls (issue 14, finding 6): each new event one request, its tokens against the
        // token limits, with the proxy's GCRA. Over the limit nothing of the batch is published: 429 with retry-after.
        long newEvents = 0;
        long newTokens = 0;
        for (int i = 0; i < events.size(); i++) {
            if (!seen.get(i).hasValue()) {
                newEvents++;
                newTokens = saturatedAdd(newTokens, saturatedAdd(events.get(i).getPromptTokens(), events.get(i).getCompletionTokens()));
            }
        }
        if (newEvents > 0) {
            Decision limit = quota.admit(caller.userId(), caller.apiKeyId(), newEvents, newTokens);
            QuotaHeaders.set(ctx::header, limit);
            if (!limit.admitted()) {
                throw new ApiError(Rejections.of(limit));
            }
        }
        int published = 0;
        int duplicates = 0;
        ArrayNode results = JSON.createArrayNode();
        for (int i = 0; i < events.size(); i++) {
            UsageEvent e = events.get(i);
            boolean duplicate = seen.get(i).hasValue();
            if (duplicate) {
                duplicates++;
            } else {
                sink.submit(e);
                redis.set(keys.get(i), "1", SetArgs.Builder.ex(MARKER_TTL_SECONDS));
                published++;
            }
            ObjectNode n = results.addObject();
            n.put("event_id", e.getEventId());
            n.put("caller_event_id", e.getAttributes().get("caller_event_id"));
            n.put("duplicate", duplicate);
            n.put("cost_nano_usd", e.getCostNanoUsd());
        }
        ObjectNode n = JSON.createObjectNode();
        n.put("accepted", events.size());
        n.put("published", published);
        n.put("duplicates", duplicates);
        n.set("data", results);
        ctx.status(200).contentType("application/json").result(n.toString());
    }

    private static long saturatedAdd(long a, long b) {
        long sum = a + b;
        return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
    }

    private UsageEvent parseBatchItem(JsonNode item, Caller caller, Instant now, List<String> problems) {
        if (item == null || !item.isObject()) {
            problems.add("must be an object");
            return null;
        }
        String callerEventId = text(item, "event_id");
        // The stored id is scoped to the user (finding 5); an id that is no UUID stays as sent, for the validator to name.
        String eventId = callerEventId;
        try {
            eventId = callerEventId == null ? null : CallerEventIds.stored(caller.userId(), callerEventId);
        } catch (IllegalArgumentException notAUuid) {
            // reported by UsageEventValidator below
        }
        String model = text(item, "model");
        Instant occurredAt = null;
        try {
            String t = text(item, "occurred_at");
            if (t == null) {
                problems.add("occurred_at is required (ISO-8601 instant)");
            } else {
                occurredAt = Instant.parse(t);
                if (occurredAt.isAfter(now.plus(BATCH_MAX_CLOCK_SKEW))) {
                    problems.add("occurred_at " + occurredAt + " is in the future (more than "
                            + EnvReader.shortForm(BATCH_MAX_CLOCK_SKEW) + " of clock skew)");
                } else if (occurredAt.isBefore(now.minus(batchMaxEventAge))) {
                    // Older than the aggregator's dedup retention allows: a resend could be counted twice (issue 14).
                    problems.add("occurred_at " + occurredAt + " is older than BATCH_MAX_EVENT_AGE ("
                            + EnvReader.shortForm(batchMaxEventAge) + ")");
                }
            }
        } catch (DateTimeParseException e) {
            problems.add("occurred_at must be an ISO-8601 instant such as 2026-11-01T12:00:00Z");
        }
        long prompt = tokens(item, "prompt_tokens", problems);
        long cached = tokens(item, "cached_prompt_tokens", problems);
        long completion = tokens(item, "completion_tokens", problems);
        long reasoning = tokens(item, "reasoning_tokens", problems);
        long latencyMs = tokens(item, "latency_ms", problems);
        Outcome outcome = Outcome.SUCCEEDED;
        if (item.hasNonNull("outcome")) {
            try {
                outcome = Outcome.valueOf(item.get("outcome").asText());
            } catch (IllegalArgumentException e) {
                problems.add("outcome must be one of SUCCEEDED, FAILED, CANCELLED, REJECTED");
            }
        }
        KeySource keySource = KeySource.SERVICE_CREDIT;
        if (item.hasNonNull("key_source")) {
            try {
                keySource = KeySource.valueOf(item.get("key_source").asText());
            } catch (IllegalArgumentException e) {
                problems.add("key_source must be one of SERVICE_CREDIT, PERSONAL_KEY, NONE");
            }
        }
        if (outcome == Outcome.REJECTED && (prompt | cached | completion | reasoning) != 0) {
            problems.add("a REJECTED event must have zero tokens");
        }
        long cost = 0;
        String priceVersion = null;
        // An out-of-bounds model is reported by the validator, never looked up or echoed.
        if (UsageEventBounds.modelProblem("model", model) == null && occurredAt != null && cached <= prompt && reasoning <= completion) {
            Optional<ModelPrice> price = priceBook.priceAt(model, occurredAt);
            if (price.isEmpty()) {
                problems.add("model '" + model + "' has no price at " + occurredAt);
            } else if (keySource != KeySource.NONE && outcome != Outcome.REJECTED) {
                cost = price.get().costNanoUsd(new TokenUsage(prompt, cached, completion, reasoning));
                priceVersion = price.get().priceVersion();
            } else {
                priceVersion = price.get().priceVersion();
            }
        }
        UsageEvent e = event(eventId, caller, model, Optional.ofNullable(text(item, "endpoint")).orElse(DEFAULT_ENDPOINT),
                occurredAt == null ? now : occurredAt, keySource, outcome, intOr(item, "http_status", outcome == Outcome.SUCCEEDED ? 200 : 0),
                null, cost, priceVersion, text(item, "upstream_request_id"), callerEventId == null ? Map.of("source", "metering_batch")
                        : Map.of("source", "metering_batch", "caller_event_id", callerEventId));
        // Token counts as given (the validator reports negatives and inconsistencies).
        e.setPromptTokens(item.path("prompt_tokens").asLong(0));
        e.setCachedPromptTokens(item.path("cached_prompt_tokens").asLong(0));
        e.setCompletionTokens(item.path("completion_tokens").asLong(0));
        e.setReasoningTokens(item.path("reasoning_tokens").asLong(0));
        e.setCacheHit(e.getCachedPromptTokens() > 0);
        e.setLatencyMs(latencyMs);
        e.setStreamed(item.path("streamed").asBoolean(false));
        // receivedAt is part of the event's content: keep it stable across resends, so a resent event is identical.
        e.setReceivedAt(e.getOccurredAt());
        return e;
    }

    private UsageEvent event(String eventId, Caller caller, String model, String endpoint, Instant occurredAt,
                             KeySource keySource, Outcome outcome, int httpStatus, TokenUsage usage, long cost,
                             String priceVersion, String upstreamRequestId, Map<String, String> attributes) {
        TokenUsage u = usage == null ? TokenUsage.NONE : usage;
        return UsageEvent.newBuilder()
                .setEventId(eventId == null ? "" : eventId)
                .setOccurredAt(occurredAt)
                .setReceivedAt(clock.instant())
                .setTenantId(caller.tenantId())
                .setUserId(caller.userId())
                .setApiKeyId(caller.apiKeyId())
                .setKeySource(keySource)
                .setProvider("openai")
                .setModel(model == null ? "" : model)
                .setEndpoint(endpoint)
                .setUpstreamRequestId(upstreamRequestId)
                .setOutcome(outcome)
                .setHttpStatus(httpStatus)
                .setPromptTokens(u.promptTokens())
                .setCachedPromptTokens(u.cachedPromptTokens())
                .setCompletionTokens(u.completionTokens())
                .setReasoningTokens(u.reasoningTokens())
                .setCostNanoUsd(cost)
                .setPriceVersion(priceVersion)
                .setUsageSource(UsageSource.REPORTED)
                .setCacheHit(u.cachedPromptTokens() > 0)
                .setEdgeInstance(edgeInstance)
                .setAttributes(attributes)
                .build();
    }
}
