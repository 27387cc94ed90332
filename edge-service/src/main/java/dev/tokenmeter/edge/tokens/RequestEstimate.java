package dev.tokenmeter.edge.tokens;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * What a request will cost at most, before it is sent: the locally counted prompt tokens and the completion
 * tokens the caller allows.
 *
 * <p>Prompt tokens follow OpenAI's published accounting for chat ({@code 3 + Σ (4 + tokens(content))}), and the
 * plain token count of each string for completions and embeddings; responses count instructions and each input
 * item like chat messages. Images, tool definitions and names are not counted, so this is an estimate, not a
 * bill: the upstream's usage object bills the call when it arrives.
 *
 * @param maxCompletionTokens {@code max_completion_tokens}, {@code max_tokens} or {@code max_output_tokens} (times
 *                            {@code n} for chat), else the configured default; 0 for embeddings
 * @param mediaInputTokens    the part of {@code promptTokens} that is audio input, priced apart (ADR 0088)
 */
public record RequestEstimate(long promptTokens, long maxCompletionTokens, long mediaInputTokens) {

    /** A request without audio or image input tokens priced apart. */
    public RequestEstimate(long promptTokens, long maxCompletionTokens) {
        this(promptTokens, maxCompletionTokens, 0);
    }

    public long totalTokens() {
        return Math.addExact(promptTokens, maxCompletionTokens);
    }

    public static RequestEstimate of(String endpoint, String model, JsonNode body, TokenCounter counter,
                                     long defaultMaxCompletionTokens) {
        return switch (endpoint) {
            case "/v1/chat/completions" -> new RequestEstimate(chatPrompt(model, body, counter),
                    maxTimesN(body, firstLong(body, defaultMaxCompletionTokens, "max_completion_tokens", "max_tokens")));
            case "/v1/completions" -> new RequestEstimate(stringsPrompt(model, body.get("prompt"), counter),
                    maxTimesN(body, firstLong(body, defaultMaxCompletionTokens, "max_tokens")));
            case "/v1/embeddings" -> new RequestEstimate(stringsPrompt(model, body.get("input"), counter), 0);
            // Free (ADR 0085), but counted: the event records the input's tokens, and a price row could change.
            case "/v1/moderations" -> new RequestEstimate(moderationPrompt(model, body.get("input"), counter), 0);
            // tts-1 is billed by the input's characters (code points; ADR 0085): counted exactly here, no usage comes back.
            case "/v1/audio/speech" -> new RequestEstimate(codePoints(body.get("input")), 0);
            case "/v1/images/generations" -> new RequestEstimate(counter.count(model, body.path("prompt").asText("")),
                    ImageEstimate.maxOutputTokens(body));
            case "/v1/audio/transcriptions", "/v1/audio/translations" -> UploadEstimate.audio(model, body, counter);
            case "/v1/images/edits" -> UploadEstimate.imageEdit(model, body, counter);
            case "/v1/responses" -> new RequestEstimate(responsesPrompt(model, body, counter),
                    firstLong(body, defaultMaxCompletionTokens, "max_output_tokens"));
            default -> throw new IllegalArgumentException("not a proxied endpoint: " + endpoint);
        };
    }

    static long codePoints(JsonNode input) {
        if (input == null || !input.isTextual()) {
            return 0;
        }
        String text = input.asText();
        return text.codePointCount(0, text.length());
    }

    /** Chat: 3 priming tokens + per message 4 + tokens(content). */
    static long chatPrompt(String model, JsonNode body, TokenCounter counter) {
        long tokens = 3;
        JsonNode messages = body.get("messages");
        if (messages != null && messages.isArray()) {
            for (JsonNode m : messages) {
                tokens += 4 + counter.count(model, contentText(m.get("content")));
            }
        }
        return tokens;
    }

    static long responsesPrompt(String model, JsonNode body, TokenCounter counter) {
        long tokens = 3;
        JsonNode instructions = body.get("instructions");
        if (instructions != null && instructions.isTextual()) {
            tokens += 4 + counter.count(model, instructions.asText());
        }
        JsonNode input = body.get("input");
        if (input == null) {
            return tokens;
        }
        if (input.isTextual()) {
            return tokens + 4 + counter.count(model, input.asText());
        }
        if (input.isArray()) {
            for (JsonNode item : input) {
                JsonNode content = item.has("content") ? item.get("content") : item.get("output");
                tokens += 4 + counter.count(model, contentText(content));
            }
        }
        return tokens;
    }

    /** A string, an array of strings, or token-id arrays (their length). */
    static long stringsPrompt(String model, JsonNode input, TokenCounter counter) {
        if (input == null || input.isNull()) {
            return 0;
        }
        if (input.isTextual()) {
            return counter.count(model, input.asText());
        }
        long tokens = 0;
        if (input.isArray()) {
            for (JsonNode item : input) {
                if (item.isTextual()) {
                    tokens += counter.count(model, item.asText());
                } else if (item.isNumber()) {
                    tokens += 1;
                } else if (item.isArray()) {
                    tokens += item.size();
                }
            }
        }
        return tokens;
    }

    /** A string, an array of strings, or an array of content parts (their text; images are not counted). */
    static long moderationPrompt(String model, JsonNode input, TokenCounter counter) {
        if (input != null && input.isArray() && !input.isEmpty() && input.get(0).isObject()) {
            return counter.count(model, contentText(input));
        }
        return stringsPrompt(model, input, counter);
    }

    /** A content string, or the concatenated {@code text} of an array of parts. */
    static String contentText(JsonNode content) {
        if (content == null || content.isNull()) {
            return "";
        }
        if (content.isTextual()) {
            return content.asText();
        }
        if (content.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (JsonNode part : content) {
                if (part.isTextual()) {
                    sb.append(part.asText());
                } else if (part.hasNonNull("text") && part.get("text").isTextual()) {
                    sb.append(part.get("text").asText());
                }
            }
            return sb.toString();
        }
        return "";
    }

    private static long firstLong(JsonNode body, long fallback, String... fields) {
        for (String f : fields) {
            JsonNode v = body.get(f);
            if (v != null && v.canConvertToLong() && v.asLong() > 0) {
                return v.asLong();
            }
        }
        return fallback;
    }

    private static long maxTimesN(JsonNode body, long max) {
        JsonNode n = body.get("n");
        if (n != null && n.canConvertToLong() && n.asLong() > 1) {
            return Math.multiplyExact(max, Math.min(n.asLong(), 128));
        }
        return max;
    }
}
