package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.async.AsyncJob;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;

/**
 * An async job as its caller sees it (ADR 0083): {@code {"id", "object": "async.job", "status", "endpoint", "model",
 * "created_at", "attempts", "response": {"status_code", "body"}}}; the response only once the job ended, its body the
 * answer the sync route would have given (JSON as JSON, anything else as a string).
 */
public final class AsyncJobJson {

    private static final ObjectMapper JSON = new ObjectMapper();

    private AsyncJobJson() {
    }

    static byte[] queued(AsyncJob job) {
        ObjectNode o = JSON.createObjectNode();
        o.put("id", job.jobId());
        o.put("object", "async.job");
        o.put("status", "queued");
        o.put("endpoint", job.endpoint());
        o.put("model", job.model());
        o.put("created_at", job.occurredAt().getEpochSecond());
        return bytes(o);
    }

    /** The job from its stored state ({@code JobStore#state}). */
    public static byte[] of(String jobId, Map<String, String> state) {
        ObjectNode o = JSON.createObjectNode();
        o.put("id", jobId);
        o.put("object", "async.job");
        o.put("status", state.get("status"));
        o.put("endpoint", state.get("endpoint"));
        o.put("model", state.get("model"));
        o.put("created_at", Long.parseLong(state.getOrDefault("created_ms", "0")) / 1000);
        o.put("attempts", Integer.parseInt(state.getOrDefault("attempts", "0")));
        if (state.containsKey("http_status")) {
            ObjectNode response = o.putObject("response");
            response.put("status_code", Integer.parseInt(state.get("http_status")));
            String body = state.getOrDefault("body", "");
            JsonNode parsed;
            try {
                parsed = JSON.readTree(body);
            } catch (IOException e) {
                parsed = null;
            }
            if (parsed != null && (parsed.isObject() || parsed.isArray())) {
                response.set("body", parsed);
            } else {
                response.put("body", body);
            }
        }
        if (state.containsKey("callback")) {
            o.put("callback", state.get("callback"));
        }
        if (state.containsKey("reason")) {
            o.put("reason", state.get("reason"));
        }
        return bytes(o);
    }

    private static byte[] bytes(ObjectNode o) {
        try {
            return JSON.writeValueAsBytes(o);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
