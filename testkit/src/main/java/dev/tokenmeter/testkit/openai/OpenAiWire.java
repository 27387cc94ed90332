package dev.tokenmeter.testkit.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ThreadLocalRandom;

/** The JSON shapes of OpenAI's API (chat completions, completions, embeddings, responses, models, errors). */
final class OpenAiWire {

    static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory F = JsonNodeFactory.instance;
    static final String SYSTEM_FINGERPRINT = "fp_fake0000001";
    static final List<String> MODELS = List.of(
            "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano",
            "o3", "o4-mini", "gpt-3.5-turbo-instruct", "text-embedding-3-small", "text-embedding-3-large");
    static final long MODELS_CREATED_EPOCH_S = 1_715_367_049L;
    static final int DEFAULT_EMBEDDING_DIMENSIONS = 8;

    private OpenAiWire() {
    }

    private static final char[] ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".toCharArray();
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    static String randomId(String prefix, int length) {
        ThreadLocalRandom r = ThreadLocalRandom.current();
        char[] c = new char[length];
        for (int i = 0; i < length; i++) {
            c[i] = ALNUM[r.nextInt(ALNUM.length)];
        }
        return prefix + new String(c);
    }

    static String requestId() {
        ThreadLocalRandom r = ThreadLocalRandom.current();
        char[] c = new char[32];
        for (int i = 0; i < 32; i++) {
            c[i] = HEX[r.nextInt(16)];
        }
        return "req_" + new String(c);
    }

    static String idFor(Endpoint endpoint) {
        return switch (endpoint) {
            case CHAT_COMPLETIONS -> randomId("chatcmpl-", 29);
            case COMPLETIONS -> randomId("cmpl-", 29);
            case RESPONSES -> "resp_" + requestId().substring(4) + requestId().substring(4, 20);
            case EMBEDDINGS -> null;
            case MODERATIONS -> randomId("modr-", 29);
            case IMAGES_GENERATIONS, AUDIO_SPEECH, AUDIO_TRANSCRIPTIONS, AUDIO_TRANSLATIONS, IMAGES_EDITS -> null;
        };
    }

    static byte[] bytes(ObjectNode node) {
        try {
            return JSON.writeValueAsBytes(node);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---- errors

    static ObjectNode error(String message, String type, String param, String code) {
        ObjectNode err = F.objectNode();
        err.put("message", message);
        err.put("type", type);
        err.put("param", param);
        err.put("code", code);
        ObjectNode root = F.objectNode();
        root.set("error", err);
        return root;
    }

    /** The error body OpenAI sends for this status. */
    static ObjectNode errorForStatus(int status) {
        return switch (status) {
            case 400 -> error("The fake upstream was told to reject this request.", "invalid_request_error", null, null);
            case 401 -> error("Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
                    "invalid_request_error", null, "invalid_api_key");
            case 403 -> error("You are not allowed to sample from this model", "invalid_request_error", null, null);
            case 404 -> error("The model does not exist or you do not have access to it.", "invalid_request_error", null, "model_not_found");
            case 429 -> error("Rate limit reached for requests. Please try again in 20ms.", "requests", null, "rate_limit_exceeded");
            case 500 -> error("The server had an error while processing your request. Sorry about that!", "server_error", null, null);
            case 502 -> error("Bad gateway.", "server_error", null, null);
            case 503 -> error("The server is overloaded or not ready yet.", "server_error", null, null);
            default -> error("The fake upstream was told to fail with status " + status + ".",
                    status >= 500 ? "server_error" : "invalid_request_error", null, null);
        };
    }

    // ---- usage objects

    static ObjectNode chatUsage(Usage u) {
        ObjectNode usage = F.objectNode();
        usage.put("prompt_tokens", u.promptTokens());
        usage.put("completion_tokens", u.completionTokens());
        usage.put("total_tokens", u.totalTokens());
        ObjectNode prompt = usage.putObject("prompt_tokens_details");
        prompt.put("cached_tokens", u.cachedPromptTokens());
        prompt.put("audio_tokens", 0);
        ObjectNode completion = usage.putObject("completion_tokens_details");
        completion.put("reasoning_tokens", u.reasoningTokens());
        completion.put("audio_tokens", 0);
        completion.put("accepted_prediction_tokens", 0);
        completion.put("rejected_prediction_tokens", 0);
        return usage;
    }

    static ObjectNode completionsUsage(Usage u) {
        ObjectNode usage = F.objectNode();
        usage.put("prompt_tokens", u.promptTokens());
        usage.put("completion_tokens", u.completionTokens());
        usage.put("total_tokens", u.totalTokens());
        return usage;
    }

    static ObjectNode responsesUsage(Usage u) {
        ObjectNode usage = F.objectNode();
        usage.put("input_tokens", u.promptTokens());
        usage.putObject("input_tokens_details").put("cached_tokens", u.cachedPromptTokens());
        usage.put("output_tokens", u.completionTokens());
        usage.putObject("output_tokens_details").put("reasoning_tokens", u.reasoningTokens());
        usage.put("total_tokens", u.totalTokens());
        return usage;
    }

    // ---- chat completions

    static String finishReason(FakeCall call) {
        return call.cappedByMaxTokens() ? "length" : "stop";
    }

    static ObjectNode chatCompletion(String id, long created, FakeCall call) {
        ObjectNode root = F.objectNode();
        root.put("id", id);
        root.put("object", "chat.completion");
        root.put("created", created);
        root.put("model", call.answeredModel());
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        ObjectNode message = choice.putObject("message");
        message.put("role", "assistant");
        message.put("content", call.replyText());
        message.putNull("refusal");
        message.putArray("annotations");
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason(call));
        root.set("usage", chatUsage(call.usage()));
        root.put("service_tier", call.serviceTier());
        root.put("system_fingerprint", SYSTEM_FINGERPRINT);
        return root;
    }

    private static ObjectNode chunkHead(String id, long created, FakeCall call, boolean chat) {
        ObjectNode root = F.objectNode();
        root.put("id", id);
        root.put("object", chat ? "chat.completion.chunk" : "text_completion");
        root.put("created", created);
        root.put("model", call.answeredModel());
        if (chat) {
            root.put("service_tier", call.serviceTier());
        }
        root.put("system_fingerprint", SYSTEM_FINGERPRINT);
        return root;
    }

    /** A chat chunk with one choice; {@code usage: null} is present only when include_usage was asked for. */
    static ObjectNode chatChunk(String id, long created, FakeCall call, ObjectNode delta, String finishReason) {
        ObjectNode root = chunkHead(id, created, call, true);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        choice.set("delta", delta);
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason);
        if (call.includeUsage()) {
            root.putNull("usage");
        }
        return root;
    }

    static ObjectNode roleDelta() {
        ObjectNode delta = F.objectNode();
        delta.put("role", "assistant");
        delta.put("content", "");
        delta.putNull("refusal");
        return delta;
    }

    static ObjectNode contentDelta(String text) {
        ObjectNode delta = F.objectNode();
        delta.put("content", text);
        return delta;
    }

    static ObjectNode emptyDelta() {
        return F.objectNode();
    }

    /** The last chunk before [DONE] under include_usage: no choices, the usage. */
    static ObjectNode usageChunk(String id, long created, FakeCall call) {
        ObjectNode root = chunkHead(id, created, call, call.endpoint() == Endpoint.CHAT_COMPLETIONS);
        root.putArray("choices");
        root.set("usage", call.endpoint() == Endpoint.CHAT_COMPLETIONS ? chatUsage(call.usage()) : completionsUsage(call.usage()));
        return root;
    }

    // ---- legacy completions

    static ObjectNode completion(String id, long created, FakeCall call) {
        ObjectNode root = F.objectNode();
        root.put("id", id);
        root.put("object", "text_completion");
        root.put("created", created);
        root.put("model", call.answeredModel());
        root.put("system_fingerprint", SYSTEM_FINGERPRINT);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("text", call.replyText());
        choice.put("index", 0);
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason(call));
        root.set("usage", completionsUsage(call.usage()));
        return root;
    }

    static ObjectNode completionChunk(String id, long created, FakeCall call, String text, String finishReason) {
        ObjectNode root = chunkHead(id, created, call, false);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("text", text);
        choice.put("index", 0);
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason);
        if (call.includeUsage()) {
            root.putNull("usage");
        }
        return root;
    }

    // ---- embeddings

    static ObjectNode embeddings(FakeCall call, com.fasterxml.jackson.databind.JsonNode body) {
        com.fasterxml.jackson.databind.JsonNode input = body.get("input");
        int dimensions = body.path("dimensions").isIntegralNumber() ? body.get("dimensions").asInt() : DEFAULT_EMBEDDING_DIMENSIONS;
        if (dimensions < 1 || dimensions > 4096) {
            throw new BadRequestException("Invalid 'dimensions': expected 1..4096.", "dimensions", "invalid_value");
        }
        boolean base64 = "base64".equals(body.path("encoding_format").asText("float"));
        ObjectNode root = F.objectNode();
        root.put("object", "list");
        ArrayNode data = root.putArray("data");
        if (input.isTextual() || (input.isArray() && !input.isEmpty() && input.get(0).isIntegralNumber())) {
            addEmbedding(data, 0, input.toString(), dimensions, base64);
        } else {
            int index = 0;
            for (com.fasterxml.jackson.databind.JsonNode element : input) {
                addEmbedding(data, index++, element.toString(), dimensions, base64);
            }
        }
        root.put("model", call.answeredModel());
        ObjectNode usage = root.putObject("usage");
        usage.put("prompt_tokens", call.usage().promptTokens());
        usage.put("total_tokens", call.usage().promptTokens());
        return root;
    }

    /** A unit vector seeded by the input, so equal inputs get equal vectors. */
    static float[] vectorFor(String input, int dimensions) {
        SplittableRandom random = new SplittableRandom(input.hashCode() * 0x9E3779B97F4A7C15L + dimensions);
        float[] v = new float[dimensions];
        double norm = 0;
        for (int i = 0; i < dimensions; i++) {
            v[i] = (float) (random.nextDouble() * 2 - 1);
            norm += v[i] * v[i];
        }
        float scale = (float) (1 / Math.sqrt(norm));
        for (int i = 0; i < dimensions; i++) {
            v[i] *= scale;
        }
        return v;
    }

    private static void addEmbedding(ArrayNode data, int index, String input, int dimensions, boolean base64) {
        float[] v = vectorFor(input, dimensions);
        ObjectNode item = data.addObject();
        item.put("object", "embedding");
        item.put("index", index);
        if (base64) {
            ByteBuffer buf = ByteBuffer.allocate(4 * dimensions).order(ByteOrder.LITTLE_ENDIAN);
            for (float f : v) {
                buf.putFloat(f);
            }
            item.put("embedding", Base64.getEncoder().encodeToString(buf.array()));
        } else {
            ArrayNode arr = item.putArray("embedding");
            for (float f : v) {
                arr.add(f);
            }
        }
    }

    // ---- responses

    /** {@code incomplete} when max_output_tokens cut the reply short, as OpenAI reports it. */
    static String responseStatus(FakeCall call, boolean done) {
        return !done ? "in_progress" : call.cappedByMaxTokens() ? "incomplete" : "completed";
    }

    static ObjectNode responseMessage(String itemId, String text, boolean done, boolean incomplete) {
        ObjectNode item = F.objectNode();
        item.put("id", itemId);
        item.put("type", "message");
        item.put("status", !done ? "in_progress" : incomplete ? "incomplete" : "completed");
        item.put("role", "assistant");
        ArrayNode content = item.putArray("content");
        if (done) {
            content.add(outputText(text));
        }
        return item;
    }

    static ObjectNode outputText(String text) {
        ObjectNode part = F.objectNode();
        part.put("type", "output_text");
        part.put("text", text);
        part.putArray("annotations");
        part.putArray("logprobs");
        return part;
    }

    /** A Response object; {@code done} false gives the in-progress shape of response.created. */
    static ObjectNode response(String id, String itemId, long createdAt, FakeCall call, com.fasterxml.jackson.databind.JsonNode body, boolean done) {
        ObjectNode root = F.objectNode();
        root.put("id", id);
        root.put("object", "response");
        root.put("created_at", createdAt);
        boolean incomplete = done && call.cappedByMaxTokens();
        root.put("status", responseStatus(call, done));
        root.put("background", false);
        root.putNull("error");
        if (incomplete) {
            root.putObject("incomplete_details").put("reason", "max_output_tokens");
        } else {
            root.putNull("incomplete_details");
        }
        root.set("instructions", body.path("instructions").isTextual() ? body.get("instructions") : F.nullNode());
        root.set("max_output_tokens", body.path("max_output_tokens").isIntegralNumber() ? body.get("max_output_tokens") : F.nullNode());
        root.put("model", call.answeredModel());
        ArrayNode output = root.putArray("output");
        if (done) {
            output.add(responseMessage(itemId, call.replyText(), true, incomplete));
        }
        root.put("parallel_tool_calls", true);
        root.putNull("previous_response_id");
        ObjectNode reasoning = root.putObject("reasoning");
        reasoning.set("effort", FakeCall.isReasoningModel(call.model()) ? F.textNode("medium") : F.nullNode());
        reasoning.putNull("summary");
        root.put("service_tier", call.serviceTier());
        root.put("store", body.path("store").asBoolean(true));
        root.put("temperature", 1.0);
        root.putObject("text").putObject("format").put("type", "text");
        root.put("tool_choice", "auto");
        root.putArray("tools");
        root.put("top_p", 1.0);
        root.put("truncation", "disabled");
        root.set("usage", done ? responsesUsage(call.usage()) : F.nullNode());
        root.putNull("user");
        root.putObject("metadata");
        return root;
    }

    // ---- moderations

    /** The moderation categories OpenAI's omni models report, each with a score and the input types it applies to. */
    static final List<String> MODERATION_CATEGORIES = List.of(
            "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
            "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
            "violence/graphic");

    /** One unflagged result per input (a string, an array of strings, or an array of content parts = one input). */
    static ObjectNode moderation(String id, FakeCall call, com.fasterxml.jackson.databind.JsonNode body) {
        com.fasterxml.jackson.databind.JsonNode input = body.get("input");
        int results = input.isArray() && !input.isEmpty() && input.get(0).isTextual() ? input.size() : 1;
        ObjectNode root = F.objectNode();
        root.put("id", id);
        root.put("model", call.answeredModel());
        ArrayNode data = root.putArray("results");
        for (int i = 0; i < results; i++) {
            ObjectNode r = data.addObject();
            r.put("flagged", false);
            ObjectNode categories = r.putObject("categories");
            ObjectNode scores = r.putObject("category_scores");
            ObjectNode applied = r.putObject("category_applied_input_types");
            for (String c : MODERATION_CATEGORIES) {
                categories.put(c, false);
                scores.put(c, 0.0001);
                applied.putArray(c).add("text");
            }
        }
        return root;
    }

    // ---- images

    /** A 1x1 transparent PNG: the fake's every image. */
    static final String TINY_PNG_BASE64 =
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

    /** gpt-image-1's answer: {@code n} images in base64 and the image-token usage object (no model, no tier). */
    static ObjectNode images(long createdEpochS, FakeCall call, com.fasterxml.jackson.databind.JsonNode body) {
        ObjectNode root = F.objectNode();
        root.put("created", createdEpochS);
        root.put("background", "opaque");
        ArrayNode data = root.putArray("data");
        long n = body.path("n").asLong(1);
        for (long i = 0; i < n; i++) {
            data.addObject().put("b64_json", TINY_PNG_BASE64);
        }
        root.put("output_format", "png");
        root.put("quality", FakeCall.imageQuality(body));
        root.put("size", FakeCall.imageSize(body));
        root.set("usage", imagesUsage(call.usage(), 0));
        return root;
    }

    /** {@code input_tokens} (text + image), their split, {@code output_tokens}, {@code total_tokens}. */
    static ObjectNode imagesUsage(Usage u, long imageInputTokens) {
        ObjectNode usage = F.objectNode();
        usage.put("input_tokens", u.promptTokens());
        ObjectNode details = usage.putObject("input_tokens_details");
        details.put("image_tokens", imageInputTokens);
        details.put("text_tokens", u.promptTokens() - imageInputTokens);
        usage.put("output_tokens", u.completionTokens());
        usage.put("total_tokens", u.totalTokens());
        return usage;
    }

    // ---- models

    static ObjectNode model(String id) {
        ObjectNode m = F.objectNode();
        m.put("id", id);
        m.put("object", "model");
        m.put("created", MODELS_CREATED_EPOCH_S);
        m.put("owned_by", "system");
        return m;
    }

    static ObjectNode models() {
        ObjectNode root = F.objectNode();
        root.put("object", "list");
        ArrayNode data = root.putArray("data");
        for (String id : MODELS) {
            data.add(model(id));
        }
        return root;
    }

    static ObjectNode objectNode() {
        return F.objectNode();
    }
}
