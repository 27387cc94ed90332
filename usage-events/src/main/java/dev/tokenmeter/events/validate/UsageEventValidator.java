package dev.tokenmeter.events.validate;

import dev.tokenmeter.events.UsageEvent;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * The rules every {@link UsageEvent} must satisfy before it is published or billed. The publisher
 * refuses an invalid event, the edge's batch ingest answers 400 with these messages, and the sink
 * routes an invalid record to its dead-letter table with them: one rule set, three places.
 */
public final class UsageEventValidator {

    private UsageEventValidator() {
    }

    /** Problems with the event, empty when it is valid. */
    public static List<String> problems(UsageEvent e) {
        List<String> problems = new ArrayList<>();
        if (e == null) {
            problems.add("event is null");
            return problems;
        }
        if (!isUuid(e.getEventId())) {
            problems.add("eventId must be a UUID, got " + UsageEventBounds.excerpt(e.getEventId()));
        }
        // Bounds and alphabets of ADR 0053: an event stays small, valid UTF-8 for Postgres and usable as a key.
        add(problems, UsageEventBounds.idProblem("userId", e.getUserId()));
        add(problems, UsageEventBounds.idProblem("tenantId", e.getTenantId()));
        if (e.getApiKeyId() != null) {
            add(problems, UsageEventBounds.idProblem("apiKeyId", e.getApiKeyId()));
        }
        add(problems, UsageEventBounds.idProblem("provider", e.getProvider()));
        add(problems, UsageEventBounds.modelProblem("model", e.getModel()));
        add(problems, UsageEventBounds.endpointProblem("endpoint", e.getEndpoint()));
        if (e.getUpstreamRequestId() != null) {
            add(problems, UsageEventBounds.upstreamRequestIdProblem("upstreamRequestId", e.getUpstreamRequestId()));
        }
        if (e.getPriceVersion() != null) {
            add(problems, UsageEventBounds.priceVersionProblem("priceVersion", e.getPriceVersion()));
        }
        if (e.getAnsweredModel() != null) {
            add(problems, UsageEventBounds.modelProblem("answeredModel", e.getAnsweredModel()));
        }
        if (e.getServiceTier() != null) {
            add(problems, UsageEventBounds.serviceTierProblem("serviceTier", e.getServiceTier()));
        }
        if (e.getReservationId() != null) {
            add(problems, UsageEventBounds.reservationIdProblem("reservationId", e.getReservationId()));
        }
        if (e.getEdgeInstance() != null) {
            add(problems, UsageEventBounds.idProblem("edgeInstance", e.getEdgeInstance()));
        }
        add(problems, UsageEventBounds.attributesProblem("attributes", e.getAttributes()));
        add(problems, UsageEventBounds.timeProblem("occurredAt", e.getOccurredAt()));
        add(problems, UsageEventBounds.timeProblem("receivedAt", e.getReceivedAt()));
        add(problems, UsageEventBounds.tokensProblem("promptTokens", e.getPromptTokens()));
        add(problems, UsageEventBounds.tokensProblem("cachedPromptTokens", e.getCachedPromptTokens()));
        add(problems, UsageEventBounds.tokensProblem("completionTokens", e.getCompletionTokens()));
        add(problems, UsageEventBounds.tokensProblem("reasoningTokens", e.getReasoningTokens()));
        add(problems, UsageEventBounds.costProblem("costNanoUsd", e.getCostNanoUsd()));
        add(problems, UsageEventBounds.latencyProblem("latencyMs", e.getLatencyMs()));
        // v3 (ADR 0075): an entry's age is a duration like the latency; the upstream's cost a cost like the billed one.
        if (e.getResponseCacheAgeMs() != null) {
            add(problems, UsageEventBounds.latencyProblem("responseCacheAgeMs", e.getResponseCacheAgeMs()));
        }
        if (e.getUpstreamCostNanoUsd() != null) {
            add(problems, UsageEventBounds.costProblem("upstreamCostNanoUsd", e.getUpstreamCostNanoUsd()));
        }
        // v4 (ADR 0078): attribution, within the bounds the edge answers 400 with.
        add(problems, Labels.projectProblem("project", e.getProject()));
        add(problems, Labels.problem("labels", e.getLabels()));
        if (e.getHttpStatus() != 0 && (e.getHttpStatus() < 100 || e.getHttpStatus() > 599)) {
            problems.add("httpStatus must be 0 or 100..599, got " + e.getHttpStatus());
        }
        if (e.getCachedPromptTokens() > e.getPromptTokens()) {
            problems.add("cachedPromptTokens (" + e.getCachedPromptTokens() + ") exceeds promptTokens (" + e.getPromptTokens() + ")");
        }
        if (e.getReasoningTokens() > e.getCompletionTokens()) {
            problems.add("reasoningTokens (" + e.getReasoningTokens() + ") exceeds completionTokens (" + e.getCompletionTokens() + ")");
        }
        return problems;
    }

    public static void requireValid(UsageEvent e) {
        List<String> problems = problems(e);
        if (!problems.isEmpty()) {
            throw new InvalidUsageEventException(problems);
        }
    }

    public static boolean isUuid(String s) {
        if (s == null || s.length() != 36) {
            return false;
        }
        try {
            UUID.fromString(s);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private static void add(List<String> problems, String problem) {
        if (problem != null) {
            problems.add(problem);
        }
    }
}
