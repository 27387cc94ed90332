package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.tokens.ImageEstimate;
import dev.tokenmeter.events.validate.UsageEventBounds;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/**
 * Reads a proxied call's request: the body within {@code MAX_BODY_BYTES}, a JSON object with a model, and the
 * parameters the edge bills by within their bounds (ADR 0053). Anything else is a {@link BadRequest}.
 */
final class RequestReader {

    private static final ObjectMapper JSON = new ObjectMapper();
    static final String MODERATIONS = "/v1/moderations";
    static final String IMAGES_GENERATIONS = "/v1/images/generations";
    static final String AUDIO_SPEECH = "/v1/audio/speech";
    /** OpenAI's bound on a speech request's {@code input}, in characters (ADR 0085). */
    static final int SPEECH_INPUT_MAX_CHARS = 4096;
    /** The model OpenAI uses for a moderation request without one (ADR 0085). */
    static final String DEFAULT_MODERATION_MODEL = "omni-moderation-latest";

    private final long maxBodyBytes;

    RequestReader(long maxBodyBytes) {
        this.maxBodyBytes = maxBodyBytes;
    }

    /**
     * A request the edge can bill: its body as sent and as parsed.
     *
     * @param streamed the caller asked for a stream (never for embeddings)
     */
    record ProxyRequest(byte[] body, ObjectNode tree, String model, boolean streamed, String contentType) {

        ProxyRequest(byte[] body, ObjectNode tree, String model, boolean streamed) {
            this(body, tree, model, streamed, "application/json");
        }
    }

    /**
     * A request refused before the quota saw it.
     *
     * @param rejectReason the {@code reject_reason} of its REJECTED event; null for input outside the bounds of
     *                     ADR 0053, which gets no event at all, so an out-of-bounds value never reaches the pipeline
     *                     (issue 14, finding 1)
     */
    static final class BadRequest extends Exception {
        final transient OpenAiError error;
        final String rejectReason;

        BadRequest(OpenAiError error, String rejectReason) {
            super(error.message(), null, false, false);
            this.error = error;
            this.rejectReason = rejectReason;
        }
    }

    ProxyRequest read(ProxyExchange ctx, String endpoint) throws BadRequest {
        if (UploadReader.ENDPOINTS.contains(endpoint)) {
            return UploadReader.read(ctx, endpoint); // multipart uploads (ADR 0088)
        }
        byte[] body = body(ctx, maxBodyBytes, "body_too_large");
        JsonNode tree;
        try {
            tree = JSON.readTree(body);
        } catch (IOException e) {
            tree = null;
        }
        if (tree == null || !tree.isObject()) {
            throw new BadRequest(OpenAiError.invalidRequest("We could not parse the JSON body of your request. The body must be"
                    + " a JSON object; see https://platform.openai.com/docs/api-reference.", null), "malformed_json");
        }
        JsonNode modelNode = tree.get("model");
        if (modelNode == null && endpoint.equals(MODERATIONS)) {
            // OpenAI moderates with its default model when none is named; the call is priced (at $0) by that name.
            modelNode = com.fasterxml.jackson.databind.node.TextNode.valueOf(DEFAULT_MODERATION_MODEL);
        }
        checkModel(modelNode);
        String paramProblem = endpoint.equals(IMAGES_GENERATIONS) ? ImageEstimate.parameterProblem(tree)
                : endpoint.equals(AUDIO_SPEECH) ? speechProblem(tree) : parameterProblem(tree);
        if (paramProblem != null) {
            throw new BadRequest(OpenAiError.invalidRequest(paramProblem, paramProblem.substring(0, paramProblem.indexOf(' '))), null);
        }
        if (endpoint.equals(IMAGES_GENERATIONS) && tree.path("stream").asBoolean(false)) {
            // gpt-image-1's partial-image stream carries its usage in an event the edge does not read yet (ADR 0085).
            throw new BadRequest(OpenAiError.invalidRequest("stream is not supported for images at this edge; send the"
                    + " request without stream.", "stream"), "stream_not_supported");
        }
        boolean streamed = tree.path("stream").asBoolean(false) && !endpoint.equals("/v1/embeddings") && !endpoint.equals(MODERATIONS)
                && !endpoint.equals(AUDIO_SPEECH);
        return new ProxyRequest(body, (ObjectNode) tree, modelNode.asText(), streamed);
    }

    /** A model name is present and within its bounds (ADR 0053), else the refusal. */
    static void checkModel(JsonNode modelNode) throws BadRequest {
        if (modelNode == null || !modelNode.isTextual() || modelNode.asText().isBlank()) {
            throw new BadRequest(OpenAiError.invalidRequest("You must provide a model parameter.", "model"), "missing_model");
        }
        String modelProblem = UsageEventBounds.modelProblem("model", modelNode.asText());
        if (modelProblem != null) {
            throw new BadRequest(OpenAiError.invalidRequest(modelProblem, "model"), null);
        }
    }

    /** The first request parameter out of its bounds, as a message starting with the parameter's name; else null. */
    static String parameterProblem(JsonNode tree) {
        for (String field : List.of("max_tokens", "max_completion_tokens", "max_output_tokens")) {
            JsonNode v = tree.get(field);
            if (v != null && v.isNumber() && !(integral(v) && v.asDouble() >= 0 && v.asDouble() <= UsageEventBounds.MAX_TOKENS_PARAM_MAX)) {
                return field + " must be an integer in 0.." + UsageEventBounds.MAX_TOKENS_PARAM_MAX + ", got " + v;
            }
        }
        JsonNode n = tree.get("n");
        if (n != null && n.isNumber() && !(integral(n) && n.asDouble() >= 1 && n.asDouble() <= UsageEventBounds.N_PARAM_MAX)) {
            return "n must be an integer in 1.." + UsageEventBounds.N_PARAM_MAX + ", got " + n;
        }
        return null;
    }

    /** A speech request's {@code input} beyond OpenAI's 4,096 characters (code points): a 400 and no event (ADR 0053). */
    static String speechProblem(JsonNode tree) {
        JsonNode input = tree.get("input");
        if (input != null && input.isTextual()) {
            String text = input.asText();
            int chars = text.codePointCount(0, text.length());
            if (chars > SPEECH_INPUT_MAX_CHARS) {
                return "input must be at most " + SPEECH_INPUT_MAX_CHARS + " characters, got " + chars;
            }
        }
        return null;
    }

    private static boolean integral(JsonNode v) {
        return v.isIntegralNumber() || v.asDouble() == Math.rint(v.asDouble());
    }

    /**
     * The whole body, at most {@code maxBytes}: refused from its declared length before a byte is read.
     *
     * @param tooLargeReason the reject reason of a body over the bound; null = no event (ADR 0053)
     */
    static byte[] body(ProxyExchange ctx, long maxBytes, String tooLargeReason) throws BadRequest {
        try {
            long declared = ctx.requestContentLength();
            if (declared > maxBytes) {
                throw new BadRequest(OpenAiError.bodyTooLarge(maxBytes), tooLargeReason);
            }
            InputStream in = ctx.requestBody();
            if (declared >= 0) {
                return WholeBodies.readDeclared(in, declared);
            }
            byte[] bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
            if (bytes.length > maxBytes) {
                throw new BadRequest(OpenAiError.bodyTooLarge(maxBytes), tooLargeReason);
            }
            return bytes;
        } catch (IOException e) {
            throw new BadRequest(OpenAiError.invalidRequest("The request body could not be read.", null), "body_unreadable");
        }
    }
}
