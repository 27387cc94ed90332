package dev.tokenmeter.edge.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.time.Duration;

/**
 * An error answered in OpenAI's shape, {@code {"error":{"message","type","param","code"}}}, with OpenAI's status
 * codes, so an unchanged SDK raises the same exception types it would against OpenAI
 * ({@code AuthenticationError}, {@code RateLimitError}, {@code BadRequestError}, ...).
 *
 * @param retryable  false adds {@code x-should-retry: false}: the SDKs then do not retry a call that cannot succeed
 * @param retryAfter when set, a {@code retry-after} header (whole seconds, at least 1)
 */
public record OpenAiError(int status, String message, String type, String param, String code,
                          boolean retryable, Duration retryAfter) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public static OpenAiError invalidApiKey(String message) {
        return new OpenAiError(401, message, "invalid_request_error", null, "invalid_api_key", false, null);
    }

    /** The service key's {@code expires_at} has passed (ADR 0077): like an unknown key, no event. */
    public static OpenAiError apiKeyExpired() {
        return new OpenAiError(401, "The API key provided has expired.", "invalid_request_error", null, "api_key_expired", false, null);
    }

    public static OpenAiError invalidRequest(String message, String param) {
        return new OpenAiError(400, message, "invalid_request_error", param, null, false, null);
    }

    public static OpenAiError modelNotFound(String model) {
        return new OpenAiError(400, "The model `" + model + "` does not exist or has no price at this edge.",
                "invalid_request_error", "model", "model_not_found", false, null);
    }

    /** The model is priced, but not in the service tier the request asks for (ADR 0068): refused before the call. */
    public static OpenAiError serviceTierNotPriced(String model, String tier) {
        return new OpenAiError(400, "The model `" + model + "` has no " + tier + " price at this edge; send the request"
                + " without service_tier (or with 'auto'/'default') to use the standard tier.",
                "invalid_request_error", "service_tier", "service_tier_not_priced", false, null);
    }

    /** The model is outside the caller's plan's or key's allow-list (ADR 0077): a REJECTED event, $0. */
    public static OpenAiError modelNotAllowed(String model) {
        return new OpenAiError(403, "The model `" + model + "` is not allowed for this API key or its plan.",
                "invalid_request_error", "model", "model_not_allowed", false, null);
    }

    /**
     * A {@code /v1/...} path the edge does not proxy (ADR 0085): it cannot price what such a call costs, so it is
     * refused rather than passed through unbilled. The path is echoed (to the caller only) cut to 200 characters.
     */
    public static OpenAiError unsupportedEndpoint(String method, String path) {
        String shown = path.length() > 200 ? path.substring(0, 200) + "..." : path;
        return new OpenAiError(404, "Invalid URL (" + method + " " + shown + "): this edge proxies only the calls it can"
                + " price (POST " + String.join(", ", SUPPORTED_ENDPOINTS) + ").",
                "invalid_request_error", null, "unsupported_endpoint", false, null);
    }

    /** What {@link #unsupportedEndpoint} names as served; the proxy's route list is the authority. */
    public static final java.util.List<String> SUPPORTED_ENDPOINTS = java.util.List.of("/v1/chat/completions",
            "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/moderations", "/v1/images/generations",
            "/v1/audio/speech", "/v1/audio/transcriptions", "/v1/audio/translations", "/v1/images/edits");

    public static OpenAiError bodyTooLarge(long maxBytes) {
        return new OpenAiError(413, "Request body is larger than " + maxBytes + " bytes.",
                "invalid_request_error", null, "request_too_large", false, null);
    }

    public static OpenAiError insufficientQuota(String message) {
        return new OpenAiError(429, message, "insufficient_quota", null, "insufficient_quota", false, null);
    }

    /**
     * The API key's own monthly budget is used up (ADR 0081): 429 like the credit (OpenAI's SDKs raise RateLimitError
     * and do not retry {@code insufficient_quota}), its own code so a client can tell the key's limit from the user's.
     */
    public static OpenAiError keyBudgetExceeded() {
        return new OpenAiError(429, "This API key's monthly budget is used up. Raise the key's budget or use another key.",
                "insufficient_quota", null, "key_budget_exceeded", false, null);
    }

    /** The user's tenant's shared monthly budget is used up (ADR 0081): like the key's, its own code. */
    public static OpenAiError tenantBudgetExceeded() {
        return new OpenAiError(429, "Your organization's monthly budget is used up. Ask its administrator to raise it.",
                "insufficient_quota", null, "tenant_budget_exceeded", false, null);
    }

    public static OpenAiError rateLimited(String message, String type, Duration retryAfter) {
        return new OpenAiError(429, message, type, null, "rate_limit_exceeded", true, retryAfter);
    }

    /** A disabled account's key, on any route: refused before any other work, no event (issue 14, finding 6). */
    public static OpenAiError accountDisabled() {
        return new OpenAiError(403, "This account is disabled.", "invalid_request_error", null, "account_disabled", false, null);
    }

    public static OpenAiError unavailable(String message, Duration retryAfter) {
        return new OpenAiError(503, message, "server_error", null, "service_unavailable", true, retryAfter);
    }

    /**
     * The retry-after of a 503 because usage cannot be recorded (the spool is nearly or wholly full, or the edge is
     * stopping): that lasts until Kafka is back or the edge restarts, so clients should not hammer it every second.
     */
    public static final Duration EVENTS_UNAVAILABLE_RETRY = Duration.ofSeconds(5);

    /** The event sink refused a call's event durably (spool full): the call cannot be billed, so it is not made. */
    /** 503 past MAX_CALLS_IN_FLIGHT: this edge is at capacity; another edge or a retry after {@code retryAfter} may serve. */
    public static OpenAiError overloaded(Duration retryAfter) {
        return new OpenAiError(503, "The server is overloaded; try again shortly.", "server_error", null, "server_overloaded",
                true, retryAfter);
    }

    public static OpenAiError spoolFull() {
        return unavailable("Usage cannot be recorded right now (spool full); try again later.", EVENTS_UNAVAILABLE_RETRY);
    }

    /** The event sink is not ready to take events (nearly full, or stopping): refused before anything is spent. */
    public static OpenAiError eventsUnavailable() {
        return unavailable("Usage cannot be recorded right now; try again later.", EVENTS_UNAVAILABLE_RETRY);
    }

    public static OpenAiError upstreamTimeout(Duration timeout) {
        return new OpenAiError(504, "The upstream did not answer within " + timeout.toMillis() + " ms.",
                "server_error", null, "upstream_timeout", true, null);
    }

    public static OpenAiError upstreamUnreachable() {
        return new OpenAiError(502, "The upstream could not be reached.", "server_error", null, "upstream_unreachable", true, null);
    }

    public static OpenAiError internal(String message) {
        return new OpenAiError(500, message, "server_error", null, null, true, null);
    }

    public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode error = root.putObject("error");
        error.put("message", message);
        error.put("type", type);
        if (param == null) {
            error.putNull("param");
        } else {
            error.put("param", param);
        }
        if (code == null) {
            error.putNull("code");
        } else {
            error.put("code", code);
        }
        return root.toString();
    }
}
