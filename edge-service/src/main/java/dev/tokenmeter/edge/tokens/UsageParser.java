package dev.tokenmeter.edge.tokens;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.pricing.TokenUsage;

import java.util.Optional;

/**
 * Reads OpenAI's usage objects: chat/completions/embeddings ({@code prompt_tokens},
 * {@code prompt_tokens_details.cached_tokens}, {@code completion_tokens},
 * {@code completion_tokens_details.reasoning_tokens}) and responses ({@code input_tokens},
 * {@code input_tokens_details.cached_tokens}, {@code output_tokens}, {@code output_tokens_details.reasoning_tokens}).
 */
public final class UsageParser {

    private UsageParser() {
    }

    /** The usage in a whole (non-streamed) response body: {@code usage}, or {@code response.usage}. */
    public static Optional<TokenUsage> fromResponseBody(JsonNode body) {
        if (body == null || !body.isObject()) {
            return Optional.empty();
        }
        Optional<TokenUsage> usage = fromUsage(body.get("usage"));
        if (usage.isEmpty() && body.has("response")) {
            usage = fromUsage(body.get("response").get("usage"));
        }
        return usage;
    }

    public static Optional<TokenUsage> fromUsage(JsonNode usage) {
        if (usage == null || !usage.isObject()) {
            return Optional.empty();
        }
        boolean responsesStyle = usage.has("input_tokens");
        if (!responsesStyle && !usage.has("prompt_tokens")) {
            return Optional.empty();
        }
        long prompt = responsesStyle ? usage.path("input_tokens").asLong(0) : usage.path("prompt_tokens").asLong(0);
        long cached = (responsesStyle ? usage.path("input_tokens_details") : usage.path("prompt_tokens_details"))
                .path("cached_tokens").asLong(0);
        long completion = responsesStyle ? usage.path("output_tokens").asLong(0) : usage.path("completion_tokens").asLong(0);
        long reasoning = (responsesStyle ? usage.path("output_tokens_details") : usage.path("completion_tokens_details"))
                .path("reasoning_tokens").asLong(0);
        prompt = Math.max(0, prompt);
        completion = Math.max(0, completion);
        return Optional.of(new TokenUsage(prompt, Math.min(Math.max(0, cached), prompt), completion,
                Math.min(Math.max(0, reasoning), completion)));
    }
}
