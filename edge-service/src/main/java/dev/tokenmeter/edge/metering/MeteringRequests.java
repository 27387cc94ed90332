package dev.tokenmeter.edge.metering;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.events.validate.Labels;
import dev.tokenmeter.events.validate.UsageEventBounds;
import io.javalin.http.Context;

import java.io.IOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reading the metering API's JSON bodies, and its bad-input answers: an {@link ApiError} thrown from a route is
 * answered by {@link MeteringApi}'s guard (after charging the caller's rate limit, like a bad call at the proxy).
 */
final class MeteringRequests {

    static final ObjectMapper JSON = new ObjectMapper();
    /** How long the commit and batch idempotency markers are kept. */
    static final long MARKER_TTL_SECONDS = Duration.ofHours(24).toSeconds();
    static final String DEFAULT_ENDPOINT = "/v1/chat/completions";

    private MeteringRequests() {
    }

    /** The route's answer is this error. */
    static final class ApiError extends RuntimeException {
        final OpenAiError error;

        ApiError(OpenAiError error) {
            super(error.message(), null, false, false);
            this.error = error;
        }
    }

    static ApiError bad(String message, String param) {
        return new ApiError(OpenAiError.invalidRequest(message, param));
    }

    /** A 400 naming {@code param} when {@code problem} (a bounds check of ADR 0053) is not null. */
    static void bounded(String problem, String param) {
        if (problem != null) {
            throw bad(problem, param);
        }
    }

    /** Problems joined; the param is the field the first problem starts with. */
    static ApiError bad(List<String> problems) {
        String first = problems.get(0);
        return bad(String.join("; ", problems), first.substring(0, Math.max(0, first.indexOf(' '))));
    }

    /**
     * The call's attribution labels (ADR 0078): the body's {@code labels} object of strings, or else the
     * {@code x-tokenmeter-tags} header; not both. A 400 naming the bad label (param {@code labels} or the header).
     */
    static Map<String, String> labels(Context ctx, JsonNode b) {
        String header = ctx.header(Labels.HEADER);
        JsonNode given = b.get("labels");
        if (given == null || given.isNull()) {
            try {
                return Labels.parseHeader(header);
            } catch (Labels.InvalidLabelsException e) {
                throw bad(e.getMessage(), Labels.HEADER);
            }
        }
        if (header != null) {
            throw bad("Give labels in the body's 'labels' or in the " + Labels.HEADER + " header, not both.", "labels");
        }
        try {
            return labelsOf(given);
        } catch (Labels.InvalidLabelsException e) {
            throw bad(e.getMessage(), "labels");
        }
    }

    /** A JSON object of string values as labels within bounds. */
    static Map<String, String> labelsOf(JsonNode given) {
        if (!given.isObject()) {
            throw new Labels.InvalidLabelsException("labels must be an object of string values, e.g. {\"feature\": \"chat\"}");
        }
        if (given.size() > Labels.MAX_LABELS) {
            throw new Labels.InvalidLabelsException("labels may hold at most " + Labels.MAX_LABELS + " labels, got " + given.size());
        }
        Map<String, String> m = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : given.properties()) {
            if (!e.getValue().isTextual()) {
                throw new Labels.InvalidLabelsException("labels: value of label " + UsageEventBounds.excerpt(e.getKey())
                        + " must be a string");
            }
            m.put(e.getKey(), e.getValue().textValue());
        }
        return Labels.of(m, "labels");
    }

    static ApiError notFound(String message) {
        return new ApiError(new OpenAiError(404, message, "invalid_request_error", null, "reservation_not_found", false, null));
    }

    static JsonNode body(Context ctx) {
        try {
            JsonNode n = JSON.readTree(ctx.bodyAsBytes());
            if (n == null || !n.isObject()) {
                throw bad("The body must be a JSON object.", null);
            }
            return n;
        } catch (IOException e) {
            throw bad("We could not parse the JSON body of your request.", null);
        }
    }

    /** A token count (or other non-negative count) within its bounds; 0 when absent, 0 and a problem when bad. */
    static long tokens(JsonNode b, String field, List<String> problems) {
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

    /** The token counts and latency a caller reports for a call, each within its bounds (not yet checked together). */
    record Counts(long prompt, long cached, long completion, long reasoning, long latencyMs) {

        static Counts of(JsonNode b, List<String> problems) {
            return new Counts(tokens(b, "prompt_tokens", problems), tokens(b, "cached_prompt_tokens", problems),
                    tokens(b, "completion_tokens", problems), tokens(b, "reasoning_tokens", problems),
                    tokens(b, "latency_ms", problems));
        }

        /** Cached within prompt, reasoning within completion: the counts make a {@link TokenUsage}. */
        boolean consistent() {
            return cached <= prompt && reasoning <= completion;
        }

        boolean anyTokens() {
            return (prompt | cached | completion | reasoning) != 0;
        }

        TokenUsage usage() {
            return new TokenUsage(prompt, cached, completion, reasoning);
        }
    }

    /** The enum constant named by {@code field}; {@code fallback} when absent; a problem when it names none. */
    static <E extends Enum<E>> E constant(JsonNode b, String field, Class<E> type, E fallback, String problem, List<String> problems) {
        if (!b.hasNonNull(field)) {
            return fallback;
        }
        try {
            return Enum.valueOf(type, b.get(field).asText());
        } catch (IllegalArgumentException e) {
            problems.add(problem);
            return fallback;
        }
    }

    static String text(JsonNode b, String field) {
        JsonNode n = b.get(field);
        return n == null || n.isNull() ? null : n.asText();
    }

    /** OpenAI's service_tier words and ours that the metering API takes (ADR 0068); anything else is a 400. */
    static final java.util.List<String> SERVICE_TIER_WORDS = java.util.List.of("auto", "default", "standard", "flex", "priority", "batch");

    /** The optional {@code service_tier}: null when absent, else one of {@link #SERVICE_TIER_WORDS}. */
    static String serviceTier(JsonNode b) {
        JsonNode n = b.get("service_tier");
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isTextual() || !SERVICE_TIER_WORDS.contains(n.asText())) {
            throw bad("service_tier must be one of " + String.join(", ", SERVICE_TIER_WORDS) + ".", "service_tier");
        }
        return n.asText();
    }

    static int intOr(JsonNode b, String field, int fallback) {
        JsonNode n = b.get(field);
        return n != null && n.canConvertToInt() ? n.asInt() : fallback;
    }

    // Redis keys of the metering API; one user's share a hash tag.

    static String reservationKey(String userId, String reservationId) {
        return "tm:meter:{u:" + userId + "}:res:" + reservationId;
    }

    static String commitKey(String userId, String reservationId) {
        return "tm:meter:{u:" + userId + "}:committed:" + reservationId;
    }

    static String seenKey(String userId, String eventId) {
        return "tm:meter:{u:" + userId + "}:seen:" + eventId;
    }
}
