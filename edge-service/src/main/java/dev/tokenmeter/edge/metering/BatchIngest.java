package dev.tokenmeter.edge.metering;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.call.Metering;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.http.QuotaHeaders;
import dev.tokenmeter.edge.http.Rejections;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.edge.pricing.TierPricing;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.validate.Labels;
import dev.tokenmeter.events.validate.UsageEventBounds;
import dev.tokenmeter.events.validate.UsageEventValidator;
import io.javalin.http.Context;
import io.lettuce.core.KeyValue;
import io.lettuce.core.SetArgs;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

import static dev.tokenmeter.edge.metering.MeteringRequests.ApiError;
import static dev.tokenmeter.edge.metering.MeteringRequests.Counts;
import static dev.tokenmeter.edge.metering.MeteringRequests.constant;
import static dev.tokenmeter.edge.metering.MeteringRequests.DEFAULT_ENDPOINT;
import static dev.tokenmeter.edge.metering.MeteringRequests.JSON;
import static dev.tokenmeter.edge.metering.MeteringRequests.MARKER_TTL_SECONDS;
import static dev.tokenmeter.edge.metering.MeteringRequests.bad;
import static dev.tokenmeter.edge.metering.MeteringRequests.body;
import static dev.tokenmeter.edge.metering.MeteringRequests.intOr;
import static dev.tokenmeter.edge.metering.MeteringRequests.seenKey;
import static dev.tokenmeter.edge.metering.MeteringRequests.text;

/**
 * {@code POST /v1/metering/usage:batch}: already-finished calls an app server reports, with caller-chosen UUID
 * event ids. Unlike the other metering routes these are not calls made through the edge: each event is built from
 * what the caller sent, checked against the rules below, priced at its {@code occurred_at}, and published.
 *
 * <p><b>Rules</b> (issue 14, finding 4): {@code occurred_at} no older than {@code BATCH_MAX_EVENT_AGE} (below the
 * aggregator's dedup retention, so a resend is always deduplicated; older prices and closed periods are out of
 * reach) and no more than {@link #BATCH_MAX_CLOCK_SKEW} ahead; {@code key_source} PERSONAL_KEY only for a user with a
 * personal key; REJECTED only with zero tokens. A batch is rate limited like calls (see {@code QuotaGate#admit}).
 * A batch with any bad event publishes nothing.
 *
 * <p><b>Idempotency.</b> Ids accepted in the last 24 h are remembered in Redis (per user, written after the sink
 * accepted the event) and not re-published; past that window a resent event is published again with the same id and
 * identical content (the price is the row in force at its occurredAt, and rows are append-only), and the ledger
 * dedups it.
 */
final class BatchIngest {

    static final int MAX_BATCH = 1_000;
    /** How far in the future a batch event's occurred_at may be: the caller's clock may run ahead of ours. */
    static final Duration BATCH_MAX_CLOCK_SKEW = Duration.ofMinutes(5);

    private final Metering metering;
    private final PriceBook priceBook;
    private final RedisClusterCommands<String, String> redis;
    private final String edgeInstance;
    private final Clock clock;
    private final Predicate<String> hasPersonalKey;
    private final Duration batchMaxEventAge;

    BatchIngest(Metering metering, PriceBook priceBook, RedisClusterCommands<String, String> redis, String edgeInstance, Clock clock,
                Predicate<String> hasPersonalKey, Duration batchMaxEventAge) {
        this.metering = metering;
        this.priceBook = priceBook;
        this.redis = redis;
        this.edgeInstance = edgeInstance;
        this.clock = clock;
        this.hasPersonalKey = hasPersonalKey;
        this.batchMaxEventAge = batchMaxEventAge;
    }

    void handle(Context ctx, Caller caller) {
        JsonNode b = body(ctx);
        JsonNode items = b.get("events");
        if (items == null || !items.isArray() || items.isEmpty()) {
            throw bad("'events' must be a non-empty array.", "events");
        }
        if (items.size() > MAX_BATCH) {
            throw bad("At most " + MAX_BATCH + " events per batch, got " + items.size() + ".", "events");
        }
        // Attribution (ADR 0078): the header's labels apply to every item without its own 'labels' object.
        Map<String, String> headerLabels;
        try {
            headerLabels = Labels.parseHeader(ctx.header(Labels.HEADER));
        } catch (Labels.InvalidLabelsException e) {
            throw bad(e.getMessage(), Labels.HEADER);
        }
        Instant now = clock.instant();
        List<UsageEvent> events = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        LinkedHashSet<String> ids = new LinkedHashSet<>();
        Boolean personalKey = null; // looked up once, for the first PERSONAL_KEY event
        for (int i = 0; i < items.size(); i++) {
            JsonNode item = items.get(i);
            List<String> own = new ArrayList<>();
            UsageEvent e = parseBatchItem(item, caller, now, own, headerLabels);
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
        List<KeyValue<String, String>> seen = redis.mget(keys.toArray(String[]::new));
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
            Decision limit = metering.quota().admit(caller.userId(), caller.apiKeyId(), newEvents, newTokens);
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
                metering.submit(e);
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

    private UsageEvent parseBatchItem(JsonNode item, Caller caller, Instant now, List<String> problems,
                                      Map<String, String> headerLabels) {
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
        Counts counts = Counts.of(item, problems);
        Outcome outcome = constant(item, "outcome", Outcome.class, Outcome.SUCCEEDED,
                "outcome must be one of SUCCEEDED, FAILED, CANCELLED, REJECTED", problems);
        KeySource keySource = constant(item, "key_source", KeySource.class, KeySource.SERVICE_CREDIT,
                "key_source must be one of SERVICE_CREDIT, PERSONAL_KEY, NONE", problems);
        if (outcome == Outcome.REJECTED && counts.anyTokens()) {
            problems.add("a REJECTED event must have zero tokens");
        }
        // The tier OpenAI reported for the call (ADR 0068): it picks the price row; absent = standard.
        String reportedTier = item.path("service_tier").isTextual() ? item.get("service_tier").asText() : null;
        if (reportedTier != null && !MeteringRequests.SERVICE_TIER_WORDS.contains(reportedTier)) {
            problems.add("service_tier must be one of " + String.join(", ", MeteringRequests.SERVICE_TIER_WORDS));
            reportedTier = null;
        }
        long cost = 0;
        String priceVersion = null;
        String serviceTier = null;
        String unpricedTier = null;
        // An out-of-bounds model is reported by the validator, never looked up or echoed.
        if (UsageEventBounds.modelProblem("model", model) == null && occurredAt != null && counts.consistent()) {
            Optional<ModelPrice> standard = priceBook.priceAt(model, occurredAt);
            if (standard.isEmpty()) {
                problems.add("model '" + model + "' has no price at " + occurredAt);
            } else {
                TierPricing.Billing billing = new TierPricing(priceBook).forReported(standard.get(), reportedTier, occurredAt);
                priceVersion = billing.price().priceVersion();
                serviceTier = billing.price().tier().dbName();
                unpricedTier = billing.unpricedTier();
                if (keySource != KeySource.NONE && outcome != Outcome.REJECTED) {
                    cost = billing.price().costNanoUsd(counts.usage());
                }
            }
        }
        Map<String, String> attributes = new java.util.HashMap<>();
        attributes.put("source", "metering_batch");
        if (callerEventId != null) {
            attributes.put("caller_event_id", callerEventId);
        }
        if (unpricedTier != null) {
            attributes.put(TierPricing.UNPRICED_TIER, unpricedTier);
        }
        UsageEvent e = event(eventId, caller, model, Optional.ofNullable(text(item, "endpoint")).orElse(DEFAULT_ENDPOINT),
                occurredAt == null ? now : occurredAt, keySource, outcome, intOr(item, "http_status", outcome == Outcome.SUCCEEDED ? 200 : 0),
                cost, priceVersion, text(item, "upstream_request_id"), Map.copyOf(attributes));
        e.setServiceTier(serviceTier);
        e.setAnsweredModel(text(item, "answered_model")); // bounded by the validator, like model
        // Token counts as given (the validator reports negatives and inconsistencies).
        e.setPromptTokens(item.path("prompt_tokens").asLong(0));
        e.setCachedPromptTokens(item.path("cached_prompt_tokens").asLong(0));
        e.setCompletionTokens(item.path("completion_tokens").asLong(0));
        e.setReasoningTokens(item.path("reasoning_tokens").asLong(0));
        e.setCacheHit(e.getCachedPromptTokens() > 0);
        e.setLatencyMs(counts.latencyMs());
        e.setStreamed(item.path("streamed").asBoolean(false));
        e.setProject(caller.project());
        e.setLabels(headerLabels);
        if (item.hasNonNull("labels")) {
            try {
                e.setLabels(MeteringRequests.labelsOf(item.get("labels")));
            } catch (Labels.InvalidLabelsException bad) {
                problems.add(bad.getMessage());
            }
        }
        // receivedAt is part of the event's content: keep it stable across resends, so a resent event is identical.
        e.setReceivedAt(e.getOccurredAt());
        return e;
    }

    private UsageEvent event(String eventId, Caller caller, String model, String endpoint, Instant occurredAt,
                             KeySource keySource, Outcome outcome, int httpStatus, long cost,
                             String priceVersion, String upstreamRequestId, Map<String, String> attributes) {
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
                .setCostNanoUsd(cost)
                .setPriceVersion(priceVersion)
                .setUsageSource(UsageSource.REPORTED)
                .setEdgeInstance(edgeInstance)
                .setAttributes(attributes)
                .build();
    }
}
