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
            problems.add("eventId must be a UUID, got '" + e.getEventId() + "'");
        }
        if (blank(e.getUserId())) {
            problems.add("userId is required");
        }
        if (blank(e.getTenantId())) {
            problems.add("tenantId is required");
        }
        if (blank(e.getModel())) {
            problems.add("model is required");
        }
        if (blank(e.getEndpoint())) {
            problems.add("endpoint is required");
        }
        if (e.getOccurredAt() == null) {
            problems.add("occurredAt is required");
        }
        nonNegative(problems, "promptTokens", e.getPromptTokens());
        nonNegative(problems, "cachedPromptTokens", e.getCachedPromptTokens());
        nonNegative(problems, "completionTokens", e.getCompletionTokens());
        nonNegative(problems, "reasoningTokens", e.getReasoningTokens());
        nonNegative(problems, "costNanoUsd", e.getCostNanoUsd());
        nonNegative(problems, "latencyMs", e.getLatencyMs());
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

    private static boolean blank(String s) {
        return s == null || s.isBlank();
    }

    private static void nonNegative(List<String> problems, String field, long value) {
        if (value < 0) {
            problems.add(field + " must be >= 0, got " + value);
        }
    }
}
