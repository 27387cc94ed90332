package dev.tokenmeter.edge.tokens;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Map;

/**
 * The output (image) tokens an image request may cost at most, for its reservation (ADR 0085), and the bounds of
 * the parameters that decide them. gpt-image-1 bills a fixed number of output tokens per image by quality and size
 * (OpenAI's published table); the answer's usage object bills the call, this only sizes the estimate.
 */
public final class ImageEstimate {

    /** OpenAI's bound on {@code n} for image requests. */
    public static final int N_MAX = 10;

    /** Output tokens per image, by quality then size (gpt-image-1, as published in 2025). */
    static final Map<String, Map<String, Long>> TOKENS_PER_IMAGE = Map.of(
            "low", Map.of("1024x1024", 272L, "1024x1536", 408L, "1536x1024", 400L),
            "medium", Map.of("1024x1024", 1056L, "1024x1536", 1584L, "1536x1024", 1568L),
            "high", Map.of("1024x1024", 4160L, "1024x1536", 6240L, "1536x1024", 6208L));

    /** The most any one image costs: for {@code auto} or a value the table lacks, the estimate assumes it. */
    static final long MAX_TOKENS_PER_IMAGE = 6240L;

    private ImageEstimate() {
    }

    /** {@code n} (default 1) × the tokens of one image at the request's quality and size, or the most when unknown. */
    public static long maxOutputTokens(JsonNode body) {
        JsonNode n = body.get("n");
        long images = n != null && n.canConvertToLong() ? n.asLong() : 1;
        Map<String, Long> bySize = TOKENS_PER_IMAGE.get(body.path("quality").asText(""));
        Long perImage = bySize == null ? null : bySize.get(body.path("size").asText(""));
        return Math.multiplyExact(Math.max(1, images), perImage == null ? MAX_TOKENS_PER_IMAGE : perImage);
    }

    /**
     * The first parameter out of its bounds (ADR 0053: a 400 and no event), as a message starting with its name; else
     * null. A missing or bad prompt, size or quality is the upstream's to refuse (a FAILED event at $0).
     */
    public static String parameterProblem(JsonNode body) {
        JsonNode n = body.get("n");
        if (n != null && !n.isNull() && !(n.isIntegralNumber() && n.asLong() >= 1 && n.asLong() <= N_MAX)) {
            return "n must be an integer in 1.." + N_MAX + " for images, got " + (n.toString().length() > 32 ? n.toString().substring(0, 32) + "..." : n);
        }
        return null;
    }
}
