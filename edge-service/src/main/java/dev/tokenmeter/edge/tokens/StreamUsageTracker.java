package dev.tokenmeter.edge.tokens;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.pricing.TokenUsage;

import java.util.Optional;

/**
 * Watches the {@code data:} lines of a streamed answer as they pass through: remembers the usage chunk (chat and
 * completions: the chunk with a {@code usage} object; responses: {@code response.completed}/{@code .incomplete}),
 * the {@code model} and {@code service_tier} the chunks name (ADR 0068)
 * and counts the streamed completion text (content, legacy text, tool-call arguments, responses' output deltas) with
 * the model's tokenizer, so a stream that ends without usage can still be billed. Never stores the text itself.
 * One instance per call; not thread-safe.
 */
public final class StreamUsageTracker {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final String model;
    private final TokenCounter counter;
    private TokenUsage reported;
    private String answeredModel;
    private String serviceTier;
    private long streamedCompletionTokens;
    private long deltaCount;

    public StreamUsageTracker(String model, TokenCounter counter) {
        this.model = model;
        this.counter = counter;
    }

    /** One line of the SSE stream, without its line terminator. */
    public void onLine(String line) {
        if (!line.startsWith("data:")) {
            return;
        }
        String payload = line.substring(5).strip();
        if (payload.isEmpty() || payload.equals("[DONE]") || payload.charAt(0) != '{') {
            return;
        }
        JsonNode event;
        try {
            event = JSON.readTree(payload);
        } catch (Exception e) {
            return; // not ours to judge; the client gets the line unchanged
        }
        JsonNode response = event.get("response");
        remember(event);
        if (response != null && response.isObject()) {
            remember(response);
        }
        JsonNode usage = event.get("usage");
        if (usage != null && usage.isObject()) {
            UsageParser.fromUsage(usage).ifPresent(u -> reported = u);
        }
        String type = event.path("type").asText("");
        if (type.startsWith("response.")) {
            onResponsesEvent(type, event);
            return;
        }
        JsonNode choices = event.get("choices");
        if (choices != null && choices.isArray()) {
            for (JsonNode choice : choices) {
                JsonNode delta = choice.get("delta");
                if (delta != null) {
                    countDelta(delta.get("content"));
                    countDelta(delta.get("refusal"));
                    JsonNode toolCalls = delta.get("tool_calls");
                    if (toolCalls != null && toolCalls.isArray()) {
                        for (JsonNode call : toolCalls) {
                            countDelta(call.path("function").get("arguments"));
                        }
                    }
                } else {
                    countDelta(choice.get("text"));
                }
            }
        }
    }

    /** The model and tier the chunk (or a responses event's {@code response}) names, when it names them. */
    private void remember(JsonNode node) {
        JsonNode m = node.get("model");
        if (m != null && m.isTextual()) {
            answeredModel = m.asText();
        }
        JsonNode t = node.get("service_tier");
        if (t != null && t.isTextual()) {
            serviceTier = t.asText();
        }
    }

    private void onResponsesEvent(String type, JsonNode event) {
        if (type.endsWith(".delta") && !type.contains("audio")) {
            countDelta(event.get("delta"));
        } else if (type.equals("response.completed") || type.equals("response.incomplete") || type.equals("response.failed")) {
            UsageParser.fromUsage(event.path("response").get("usage")).ifPresent(u -> reported = u);
        }
    }

    private void countDelta(JsonNode text) {
        if (text != null && text.isTextual() && !text.asText().isEmpty()) {
            deltaCount++;
            // A delta is at least one token even where the tokenizer would merge it with its neighbours.
            streamedCompletionTokens += Math.max(1, counter.count(model, text.asText()));
        }
    }

    /** The upstream's own usage, when its usage chunk arrived. */
    public Optional<TokenUsage> reportedUsage() {
        return Optional.ofNullable(reported);
    }

    /** The model the stream's chunks name (OpenAI names the dated snapshot); null when none did. */
    public String answeredModel() {
        return answeredModel;
    }

    /** The {@code service_tier} the stream's chunks report (the last one seen); null when none did. */
    public String serviceTier() {
        return serviceTier;
    }

    /** Completion tokens counted locally from the streamed deltas (reasoning tokens are never streamed). */
    public long streamedCompletionTokens() {
        return streamedCompletionTokens;
    }

    public long deltaCount() {
        return deltaCount;
    }
}
