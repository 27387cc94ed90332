package dev.tokenmeter.edge.tokens;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.pricing.TokenUsage;

import java.io.IOException;
import java.util.Optional;

/**
 * Reads OpenAI's usage objects: chat/completions/embeddings ({@code prompt_tokens},
 * {@code prompt_tokens_details.cached_tokens}, {@code completion_tokens},
 * {@code completion_tokens_details.reasoning_tokens}) and responses ({@code input_tokens},
 * {@code input_tokens_details.cached_tokens}, {@code output_tokens}, {@code output_tokens_details.reasoning_tokens}).
 */
public final class UsageParser {

    private static final ObjectMapper JSON = new ObjectMapper();

    private UsageParser() {
    }

    /**
     * As {@link #fromResponseBody(JsonNode)}, from the body's bytes, without building a tree of the whole answer: the
     * parser walks the top-level object and skips every member but {@code usage} and {@code response.usage} (an
     * answer's text is never turned into strings). The whole document is still read, so a body that is not one JSON
     * object gives an {@link IOException}, as a tree parse would; of repeated members the last one counts, as in a
     * tree.
     */
    public static Optional<TokenUsage> fromResponseBytes(byte[] body) throws IOException {
        try (JsonParser p = JSON.createParser(body)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                // A tree parse of an empty body or a non-object gives no usage; a broken one fails in the parser.
                return Optional.empty();
            }
            JsonNode usage = null;
            JsonNode responseUsage = null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken value = p.nextToken();
                if ("usage".equals(name)) {
                    usage = p.readValueAsTree();
                } else if ("response".equals(name) && value == JsonToken.START_OBJECT) {
                    responseUsage = memberOf(p, "usage");
                } else {
                    if ("response".equals(name)) {
                        responseUsage = null;
                    }
                    p.skipChildren();
                }
            }
            requireEnd(p);
            Optional<TokenUsage> found = fromUsage(usage);
            return found.isEmpty() ? fromUsage(responseUsage) : found;
        }
    }

    /** The member {@code name} of the object the parser has just entered (the last one of that name), or null. */
    private static JsonNode memberOf(JsonParser p, String name) throws IOException {
        JsonNode found = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String member = p.currentName();
            p.nextToken();
            if (name.equals(member)) {
                found = p.readValueAsTree();
            } else {
                p.skipChildren();
            }
        }
        requireEnd(p);
        return found;
    }

    private static void requireEnd(JsonParser p) throws IOException {
        if (p.currentToken() != JsonToken.END_OBJECT) {
            throw new IOException("the JSON body ends before its object does");
        }
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
