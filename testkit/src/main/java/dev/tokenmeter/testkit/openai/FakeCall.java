package dev.tokenmeter.testkit.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the fake will do for one parsed request body: the usage it reports, the reply it sends and the
 * behaviour its directives ask for. Pure function of the endpoint and the body, so {@link FakeOpenAi#usageFor}
 * and the server always agree. The formula is documented in {@code package-info.java}.
 */
record FakeCall(
        Endpoint endpoint,
        String model,
        boolean stream,
        boolean includeUsage,
        Usage usage,
        List<String> replyWords,
        boolean cappedByMaxTokens,
        Directives directives,
        String answeredModel,
        String serviceTier) {

    static final int DEFAULT_COMPLETION_TOKENS = 16;
    /** The model of a moderation request that names none, as OpenAI picks it. */
    static final String DEFAULT_MODERATION_MODEL = "omni-moderation-latest";
    static final int CONVERSATION_OVERHEAD_TOKENS = 3;
    static final int PER_MESSAGE_OVERHEAD_TOKENS = 4;

    /** Each is one o200k_base token on its own and with a leading space; FakeCallTest checks that. */
    private static final String[] WORDS = {
        "this", "is", "a", "fake", "reply", "from", "the", "upstream",
        "with", "one", "token", "per", "word", "for", "each", "delta"
    };

    /** Built once: constructing the registry loads the vocabularies. Encoding is thread-safe. */
    private static final Encoding O200K = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.O200K_BASE);

    private static final Pattern DIRECTIVE = Pattern.compile("\\[\\[fake:([a-z-]+)=([^\\]]*)]]");

    /** Steering read from {@code [[fake:key=value]]} in the last user message; null fields are absent. */
    record Directives(Integer status, Duration latency, Duration hang, Integer cutAfter, Long cached, Long completion,
                      String tier, String model) {
        static final Directives NONE = new Directives(null, null, null, null, null, null, null, null);
    }

    /**
     * The dated snapshot OpenAI answers with when a family name is asked for (as of the 2025 price list in
     * shared/data); any other name, a snapshot included, is answered as asked.
     */
    static final java.util.Map<String, String> SNAPSHOTS = java.util.Map.ofEntries(
            java.util.Map.entry("gpt-5", "gpt-5-2025-08-07"),
            java.util.Map.entry("gpt-5-mini", "gpt-5-mini-2025-08-07"),
            java.util.Map.entry("gpt-5-nano", "gpt-5-nano-2025-08-07"),
            java.util.Map.entry("gpt-4.1", "gpt-4.1-2025-04-14"),
            java.util.Map.entry("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
            java.util.Map.entry("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
            java.util.Map.entry("gpt-4o", "gpt-4o-2024-08-06"),
            java.util.Map.entry("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
            java.util.Map.entry("o3", "o3-2025-04-16"),
            java.util.Map.entry("o4-mini", "o4-mini-2025-04-16"),
            java.util.Map.entry("omni-moderation-latest", "omni-moderation-2024-09-26"),
            java.util.Map.entry("text-moderation-latest", "text-moderation-007"));

    /**
     * The {@code service_tier} the answer reports: a {@code [[fake:tier=...]]} directive, else the request's
     * {@code flex} or {@code priority}, else {@code default} (OpenAI's word for standard, also what {@code auto}
     * gives).
     */
    static String answeredTier(JsonNode body, Directives directives) {
        if (directives.tier() != null) {
            return directives.tier();
        }
        String asked = body.path("service_tier").textValue();
        return "flex".equals(asked) || "priority".equals(asked) ? asked : "default";
    }

    static int countTokens(String text) {
        return text == null || text.isEmpty() ? 0 : O200K.countTokensOrdinary(text);
    }

    String replyText() {
        return String.join("", replyWords);
    }

    static FakeCall parse(Endpoint endpoint, JsonNode body) {
        if (body == null || !body.isObject()) {
            throw new BadRequestException("The request body must be a JSON object.", null, null);
        }
        JsonNode modelNode = body.get("model");
        if (endpoint == Endpoint.MODERATIONS && modelNode == null) {
            modelNode = com.fasterxml.jackson.databind.node.TextNode.valueOf(DEFAULT_MODERATION_MODEL); // OpenAI's default
        }
        if (modelNode == null || !modelNode.isTextual() || modelNode.asText().isBlank()) {
            throw new BadRequestException("you must provide a model parameter", null, null);
        }
        String model = modelNode.asText();
        boolean stream = body.path("stream").asBoolean(false);
        boolean includeUsage = stream && body.path("stream_options").path("include_usage").asBoolean(false);

        if (endpoint == Endpoint.IMAGES_GENERATIONS) {
            return image(model, body);
        }
        if (endpoint == Endpoint.AUDIO_SPEECH) {
            // Speech is billed by the input's characters (tts-1): the usage's prompt = its code points; no usage in
            // the answer, which is audio bytes.
            JsonNode input = required(body, "input");
            if (!input.isTextual()) {
                throw new BadRequestException("Invalid type for 'input': expected a string.", "input", "invalid_type");
            }
            String text = input.asText();
            return new FakeCall(endpoint, model, false, false, new Usage(text.codePointCount(0, text.length()), 0, 0, 0),
                    List.of(), false, parseDirectives(text), model, null);
        }
        long promptTokens;
        String lastUserText;
        Long maxTokens;
        switch (endpoint) {
            case CHAT_COMPLETIONS -> {
                JsonNode messages = body.get("messages");
                if (messages == null || messages.isNull()) {
                    throw new BadRequestException("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
                }
                if (!messages.isArray()) {
                    throw new BadRequestException("Invalid type for 'messages': expected an array.", "messages", "invalid_type");
                }
                if (messages.isEmpty()) {
                    throw new BadRequestException("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "messages", "empty_array");
                }
                promptTokens = CONVERSATION_OVERHEAD_TOKENS;
                lastUserText = null;
                for (JsonNode message : messages) {
                    String text = contentText(message.get("content"));
                    promptTokens += PER_MESSAGE_OVERHEAD_TOKENS + countTokens(text);
                    if ("user".equals(message.path("role").asText())) {
                        lastUserText = text;
                    }
                }
                maxTokens = optionalNonNegative(body, "max_completion_tokens");
                if (maxTokens == null) {
                    maxTokens = optionalNonNegative(body, "max_tokens");
                }
            }
            case COMPLETIONS -> {
                JsonNode prompt = required(body, "prompt");
                promptTokens = countInputs(prompt, "prompt");
                lastUserText = lastString(prompt);
                maxTokens = optionalNonNegative(body, "max_tokens");
            }
            case EMBEDDINGS, MODERATIONS -> {
                JsonNode input = required(body, "input");
                // A multimodal moderation input is an array of content parts: its text parts count.
                boolean parts = endpoint == Endpoint.MODERATIONS && input.isArray() && !input.isEmpty() && input.get(0).isObject();
                promptTokens = parts ? countTokens(contentText(input)) : countInputs(input, "input");
                lastUserText = lastString(input);
                maxTokens = null;
            }
            case RESPONSES -> {
                promptTokens = CONVERSATION_OVERHEAD_TOKENS;
                JsonNode instructions = body.get("instructions");
                if (instructions != null && instructions.isTextual()) {
                    promptTokens += PER_MESSAGE_OVERHEAD_TOKENS + countTokens(instructions.asText());
                }
                JsonNode input = body.get("input");
                lastUserText = null;
                if (input != null && input.isTextual()) {
                    promptTokens += PER_MESSAGE_OVERHEAD_TOKENS + countTokens(input.asText());
                    lastUserText = input.asText();
                } else if (input != null && input.isArray()) {
                    for (JsonNode item : input) {
                        JsonNode content = item.has("content") ? item.get("content") : item.get("output");
                        String text = contentText(content);
                        promptTokens += PER_MESSAGE_OVERHEAD_TOKENS + countTokens(text);
                        if ("user".equals(item.path("role").asText())) {
                            lastUserText = text;
                        }
                    }
                } else if (input != null && !input.isNull()) {
                    throw new BadRequestException("Invalid type for 'input': expected a string or an array.", "input", "invalid_type");
                }
                maxTokens = optionalNonNegative(body, "max_output_tokens");
            }
            default -> throw new IllegalStateException(endpoint.toString());
        }

        Directives directives = parseDirectives(lastUserText);
        long cached = directives.cached() == null ? 0 : Math.min(directives.cached(), promptTokens);

        String answeredModel = directives.model() != null ? directives.model() : SNAPSHOTS.getOrDefault(model, model);
        if (endpoint == Endpoint.EMBEDDINGS || endpoint == Endpoint.MODERATIONS) {
            // Embeddings answers carry no service_tier; moderation answers carry neither a tier nor a usage object
            // (the usage here is only what usageFor predicts: the input's tokens).
            return new FakeCall(endpoint, model, false, false, new Usage(promptTokens, cached, 0, 0), List.of(), false, directives,
                    answeredModel, null);
        }
        long wanted = directives.completion() == null ? DEFAULT_COMPLETION_TOKENS : directives.completion();
        long completion = maxTokens == null ? wanted : Math.min(wanted, maxTokens);
        boolean capped = maxTokens != null && maxTokens < wanted;
        long reasoning = endpoint != Endpoint.COMPLETIONS && isReasoningModel(model) ? completion / 4 : 0;
        List<String> words = replyWords((int) (completion - reasoning));
        return new FakeCall(endpoint, model, stream, includeUsage,
                new Usage(promptTokens, cached, completion, reasoning), words, capped, directives, answeredModel,
                answeredTier(body, directives));
    }

    /** Output tokens per image by quality and size, OpenAI's published table for gpt-image-1. */
    static final java.util.Map<String, java.util.Map<String, Long>> IMAGE_TOKENS = java.util.Map.of(
            "low", java.util.Map.of("1024x1024", 272L, "1024x1536", 408L, "1536x1024", 400L),
            "medium", java.util.Map.of("1024x1024", 1056L, "1024x1536", 1584L, "1536x1024", 1568L),
            "high", java.util.Map.of("1024x1024", 4160L, "1024x1536", 6240L, "1536x1024", 6208L));

    /** {@code auto} (or absent) quality is answered as medium, {@code auto} size as 1024x1024. */
    static String imageQuality(JsonNode body) {
        String q = body.path("quality").asText("auto");
        return q.equals("auto") ? "medium" : q;
    }

    static String imageSize(JsonNode body) {
        String s = body.path("size").asText("auto");
        return s.equals("auto") ? "1024x1024" : s;
    }

    /**
     * An image generation: input = the prompt's tokens (all text), output = n × the table's tokens for one image;
     * no tier in the answer. Unknown quality or size, n outside 1..10 or no prompt: 400, as OpenAI answers.
     */
    private static FakeCall image(String model, JsonNode body) {
        JsonNode prompt = required(body, "prompt");
        if (!prompt.isTextual()) {
            throw new BadRequestException("Invalid type for 'prompt': expected a string.", "prompt", "invalid_type");
        }
        Long n = optionalNonNegative(body, "n");
        if (n != null && (n < 1 || n > 10)) {
            throw new BadRequestException("Invalid 'n': expected 1..10.", "n", "invalid_value");
        }
        java.util.Map<String, Long> bySize = IMAGE_TOKENS.get(imageQuality(body));
        if (bySize == null) {
            throw new BadRequestException("Invalid 'quality'.", "quality", "invalid_value");
        }
        Long perImage = bySize.get(imageSize(body));
        if (perImage == null) {
            throw new BadRequestException("Invalid 'size'.", "size", "invalid_value");
        }
        long output = (n == null ? 1 : n) * perImage;
        Directives directives = parseDirectives(prompt.asText());
        return new FakeCall(Endpoint.IMAGES_GENERATIONS, model, false, false, new Usage(countTokens(prompt.asText()), 0, output, 0),
                List.of(), false, directives, model, null);
    }

    static boolean isReasoningModel(String model) {
        return model.startsWith("o") || model.startsWith("gpt-5");
    }

    static List<String> replyWords(int count) {
        List<String> words = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            words.add(i == 0 ? WORDS[0] : " " + WORDS[i % WORDS.length]);
        }
        return words;
    }

    private static JsonNode required(JsonNode body, String field) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) {
            throw new BadRequestException("Missing required parameter: '" + field + "'.", field, "missing_required_parameter");
        }
        return node;
    }

    private static Long optionalNonNegative(JsonNode body, String field) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isIntegralNumber() || node.asLong() < 0) {
            throw new BadRequestException("Invalid '" + field + "': expected a non-negative integer.", field, "invalid_value");
        }
        return node.asLong();
    }

    /** A string, an array of content parts ({@code text} of each part), or null. */
    private static String contentText(JsonNode content) {
        if (content == null || content.isNull()) {
            return "";
        }
        if (content.isTextual()) {
            return content.asText();
        }
        if (content.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (JsonNode part : content) {
                JsonNode text = part.isTextual() ? part : part.get("text");
                if (text != null && text.isTextual()) {
                    sb.append(text.asText());
                }
            }
            return sb.toString();
        }
        return "";
    }

    /** A string, an array of strings, an array of token ids, or an array of arrays of token ids. */
    private static long countInputs(JsonNode input, String param) {
        if (input.isTextual()) {
            return countTokens(input.asText());
        }
        if (input.isArray()) {
            long sum = 0;
            for (JsonNode element : input) {
                if (element.isTextual()) {
                    sum += countTokens(element.asText());
                } else if (element.isIntegralNumber()) {
                    sum += 1;
                } else if (element.isArray()) {
                    sum += element.size();
                } else {
                    throw new BadRequestException("Invalid '" + param + "': expected strings or token arrays.", param, "invalid_type");
                }
            }
            return sum;
        }
        throw new BadRequestException("Invalid type for '" + param + "': expected a string or an array.", param, "invalid_type");
    }

    private static String lastString(JsonNode input) {
        if (input.isTextual()) {
            return input.asText();
        }
        String last = null;
        for (JsonNode element : input) {
            if (element.isTextual()) {
                last = element.asText();
            }
        }
        return last;
    }

    static Directives parseDirectives(String text) {
        if (text == null || !text.contains("[[fake:")) {
            return Directives.NONE;
        }
        Integer status = null;
        Duration latency = null;
        Duration hang = null;
        Integer cutAfter = null;
        Long cached = null;
        Long completion = null;
        String tier = null;
        String model = null;
        Matcher m = DIRECTIVE.matcher(text);
        while (m.find()) {
            String key = m.group(1);
            String value = m.group(2).trim();
            try {
                switch (key) {
                    case "status" -> {
                        status = Integer.parseInt(value);
                        if (status < 400 || status > 599) {
                            throw new NumberFormatException();
                        }
                    }
                    case "latency" -> latency = parseDuration(value);
                    case "hang" -> hang = parseDuration(value);
                    case "cut-after" -> cutAfter = nonNegativeInt(value);
                    case "cached" -> cached = (long) nonNegativeInt(value);
                    case "completion" -> completion = (long) nonNegativeInt(value);
                    case "tier" -> {
                        if (!value.matches("[a-z]{1,16}")) {
                            throw new NumberFormatException();
                        }
                        tier = value;
                    }
                    case "model" -> {
                        if (!value.matches("[A-Za-z0-9._:-]{1,64}")) {
                            throw new NumberFormatException();
                        }
                        model = value;
                    }
                    default -> throw new BadRequestException("Unknown fake directive '" + key
                            + "'; known: status, latency, hang, cut-after, cached, completion, tier, model.", "messages", "invalid_value");
                }
            } catch (NumberFormatException e) {
                throw new BadRequestException("Bad value for fake directive '" + key + "': '" + value + "'.", "messages", "invalid_value");
            }
        }
        return new Directives(status, latency, hang, cutAfter, cached, completion, tier, model);
    }

    private static int nonNegativeInt(String value) {
        int n = Integer.parseInt(value);
        if (n < 0) {
            throw new NumberFormatException();
        }
        return n;
    }

    /** {@code 250ms}, {@code 2s}, {@code 1m}; a bare number is milliseconds. */
    static Duration parseDuration(String value) {
        Duration d = parseDurationUnchecked(value);
        if (d.isNegative()) {
            throw new NumberFormatException();
        }
        return d;
    }

    private static Duration parseDurationUnchecked(String value) {
        String v = value.trim().toLowerCase(java.util.Locale.ROOT);
        if (v.endsWith("ms")) {
            return Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2).trim()));
        }
        if (v.endsWith("s")) {
            return Duration.ofMillis(Math.round(Double.parseDouble(v.substring(0, v.length() - 1).trim()) * 1000));
        }
        if (v.endsWith("m")) {
            return Duration.ofSeconds(Long.parseLong(v.substring(0, v.length() - 1).trim()) * 60);
        }
        return Duration.ofMillis(Long.parseLong(v));
    }
}
