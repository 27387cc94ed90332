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
     * What a whole answer says about its call: the usage (null when it reports none), the {@code model} it answered
     * with (OpenAI names the dated snapshot) and the {@code service_tier} that served it (null when absent, e.g.
     * embeddings). Chat, completions and embeddings carry them at the top level, responses in {@code response}.
     */
    public record Answer(TokenUsage usage, String model, String serviceTier) {
        static final Answer NONE = new Answer(null, null, null);
    }

    /** Only the usage of {@link #answerOf}. */
    public static Optional<TokenUsage> fromResponseBytes(byte[] body) throws IOException {
        return Optional.ofNullable(answerOf(body).usage());
    }

    /**
     * The {@link Answer} in a whole body's bytes, without building a tree of the whole answer: the parser walks the
     * top-level object and skips every member but {@code usage}, {@code model}, {@code service_tier} and the same
     * three in {@code response} (an answer's text is never turned into strings). The whole document is still read,
     * so a body that is not one JSON object gives an {@link IOException}, as a tree parse would; of repeated members
     * the last one counts, as in a tree. Top-level members win over those of {@code response}.
     */
    public static Answer answerOf(byte[] body) throws IOException {
        try (JsonParser p = JSON.createParser(body)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                // A tree parse of an empty body or a non-object gives no usage; a broken one fails in the parser.
                return Answer.NONE;
            }
            Facts top = facts(p, true);
            requireEnd(p);
            Facts inner = top.response == null ? new Facts() : top.response;
            Optional<TokenUsage> found = fromUsage(top.usage);
            // A whisper-1 verbose_json answer without a usage object (translations): its duration bills it (ADR 0088).
            return new Answer(found.or(() -> fromUsage(inner.usage)).or(() -> durationUsage(top.duration)).orElse(null),
                    top.model != null ? top.model : inner.model,
                    top.serviceTier != null ? top.serviceTier : inner.serviceTier);
        }
    }

    /** The members we read of one object; {@code response} only at the top level. */
    private static final class Facts {
        JsonNode usage;
        JsonNode duration;
        String model;
        String serviceTier;
        Facts response;
    }

    /** Reads the members of the object the parser has just entered (the last one of each name). */
    private static Facts facts(JsonParser p, boolean top) throws IOException {
        Facts f = new Facts();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken value = p.nextToken();
            switch (name) {
                case "usage" -> f.usage = p.readValueAsTree();
                case "duration" -> f.duration = top ? p.readValueAsTree() : skip(p);
                case "model" -> {
                    f.model = value == JsonToken.VALUE_STRING ? p.getText() : null;
                    p.skipChildren(); // a no-op for a string
                }
                case "service_tier" -> {
                    f.serviceTier = value == JsonToken.VALUE_STRING ? p.getText() : null;
                    p.skipChildren();
                }
                case "response" -> {
                    if (top && value == JsonToken.START_OBJECT) {
                        f.response = facts(p, false);
                        requireEnd(p);
                    } else {
                        f.response = null;
                        p.skipChildren();
                    }
                }
                default -> p.skipChildren();
            }
        }
        return f;
    }

    private static JsonNode skip(JsonParser p) throws IOException {
        p.skipChildren();
        return null;
    }

    /** The longest audio a duration may report and still bill: 100 days; beyond it the usage is not believed. */
    static final long MAX_BILLED_SECONDS = 100L * 24 * 3600;

    /**
     * An audio duration in seconds as OpenAI bills whisper-1: rounded to the nearest whole second, halves up (ADR
     * 0088); empty when it is not a number in 0..{@link #MAX_BILLED_SECONDS}.
     */
    static Optional<TokenUsage> durationUsage(JsonNode seconds) {
        if (seconds == null || !seconds.isNumber() || seconds.decimalValue().signum() < 0
                || seconds.decimalValue().compareTo(java.math.BigDecimal.valueOf(MAX_BILLED_SECONDS)) > 0) {
            return Optional.empty();
        }
        long whole = seconds.decimalValue().setScale(0, java.math.RoundingMode.HALF_UP).longValueExact();
        return Optional.of(new TokenUsage(whole, 0, 0, 0));
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
        if ("duration".equals(usage.path("type").asText())) {
            // whisper-1 (ADR 0088): billed by the audio's seconds, which stand in the prompt tokens (priced per second).
            return durationUsage(usage.get("seconds"));
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
        // gpt-image-1 (ADR 0085): input_tokens_details.image_tokens, part of input_tokens, priced apart.
        long image = responsesStyle ? usage.path("input_tokens_details").path("image_tokens").asLong(0) : 0;
        // gpt-4o(-mini)-transcribe (ADR 0088): input_token_details (sic, singular).audio_tokens, part of input_tokens,
        // priced apart in the same column: a model has image or audio input, never both.
        image += responsesStyle ? Math.max(0, usage.path("input_token_details").path("audio_tokens").asLong(0)) : 0;
        prompt = Math.max(0, prompt);
        completion = Math.max(0, completion);
        long cachedIn = Math.min(Math.max(0, cached), prompt);
        return Optional.of(new TokenUsage(prompt, cachedIn, completion, Math.min(Math.max(0, reasoning), completion),
                Math.min(Math.max(0, image), prompt - cachedIn)));
    }
}
