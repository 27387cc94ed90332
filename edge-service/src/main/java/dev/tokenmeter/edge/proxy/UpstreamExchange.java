package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.events.validate.UsageEventBounds;

import java.io.IOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The call as it goes to the upstream and comes back: the request with the chosen key and only the headers worth
 * passing on (never the caller's {@code Authorization} or {@code OpenAI-Organization}), a streamed chat or
 * completions request with {@code stream_options.include_usage=true} so its usage arrives in the last chunk; and on
 * the way back, the upstream's headers worth passing to the caller and its request id within its bounds.
 */
final class UpstreamExchange {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Upstream response headers worth passing on; the upstream's own rate-limit headers are the service's, not the caller's. */
    private static final Set<String> PASSED_RESPONSE_HEADERS =
            Set.of("x-request-id", "openai-processing-ms", "openai-version", "openai-model", "x-should-retry", "retry-after");
    /** Request headers passed upstream besides Content-Type/Accept; never Authorization or OpenAI-Organization. */
    private static final Set<String> PASSED_REQUEST_HEADERS = Set.of("openai-beta", "idempotency-key", "x-stainless-retry-count");

    private final UpstreamCall upstream;
    private final EdgeMetrics metrics;

    UpstreamExchange(UpstreamCall upstream, EdgeMetrics metrics) {
        this.upstream = upstream;
        this.metrics = metrics;
    }

    Duration idleTimeout() {
        return upstream.idleTimeout();
    }

    /** Sends the caller's request with {@code upstreamKey}; returns once the upstream's headers are in. */
    Upstream.Answer send(ProxyExchange ctx, String endpoint, RequestReader.ProxyRequest request, String upstreamKey)
            throws IOException, InterruptedException {
        byte[] forwardBody = request.streamed() ? withIncludeUsage(endpoint, request.tree(), request.body()) : request.body();
        Map<String, String> headers = new LinkedHashMap<>(8);
        headers.put("Accept", request.streamed() ? "text/event-stream" : "application/json");
        headers.put("Authorization", "Bearer " + upstreamKey);
        for (String h : PASSED_REQUEST_HEADERS) {
            String v = ctx.requestHeader(h);
            if (v != null) {
                headers.put(h, v);
            }
        }
        long start = System.nanoTime();
        try {
            Upstream.Answer answer = upstream.post(endpoint, headers, request.contentType(), forwardBody);
            metrics.upstream(Duration.ofNanos(System.nanoTime() - start));
            return answer;
        } catch (Upstream.UpstreamTimeoutException e) {
            metrics.upstream(Duration.ofNanos(System.nanoTime() - start));
            throw e;
        }
    }

    /** The upstream's request id, kept only within its bounds: it goes into the event as is. */
    static String requestId(Upstream.Answer answer) {
        String id = answer.header("x-request-id");
        return id != null && UsageEventBounds.upstreamRequestIdProblem("x-request-id", id) == null ? id : null;
    }

    /** Passes the upstream's headers worth passing on to the caller. */
    static void passHeaders(ProxyExchange ctx, Upstream.Answer answer) {
        for (String name : PASSED_RESPONSE_HEADERS) {
            String value = answer.header(name);
            if (value != null) {
                ctx.header(name, value);
            }
        }
    }

    /** Adds {@code stream_options.include_usage=true} to a streamed chat/completions request; other bodies pass unchanged. */
    static byte[] withIncludeUsage(String endpoint, ObjectNode tree, byte[] original) {
        if (!endpoint.equals("/v1/chat/completions") && !endpoint.equals("/v1/completions")) {
            return original;
        }
        JsonNode options = tree.get("stream_options");
        if (options != null && options.isObject() && options.path("include_usage").asBoolean(false)) {
            return original;
        }
        ObjectNode copy = tree.deepCopy();
        ObjectNode opts = options != null && options.isObject() ? (ObjectNode) copy.get("stream_options") : copy.putObject("stream_options");
        opts.put("include_usage", true);
        try {
            return JSON.writeValueAsBytes(copy);
        } catch (IOException e) {
            throw new IllegalStateException("could not re-serialise a parsed request", e);
        }
    }
}
