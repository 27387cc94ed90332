package dev.tokenmeter.edge.pricing;

/**
 * Token counts of one call, in OpenAI's terms: cached tokens are part of prompt tokens, reasoning tokens are part
 * of completion tokens, and image input tokens (gpt-image-1's {@code input_tokens_details.image_tokens}, ADR 0085)
 * are part of prompt tokens too, disjoint from the cached ones.
 */
public record TokenUsage(long promptTokens, long cachedPromptTokens, long completionTokens, long reasoningTokens,
                         long imageInputTokens) {

    public static final TokenUsage NONE = new TokenUsage(0, 0, 0, 0);

    /** A call without image input tokens (every text endpoint). */
    public TokenUsage(long promptTokens, long cachedPromptTokens, long completionTokens, long reasoningTokens) {
        this(promptTokens, cachedPromptTokens, completionTokens, reasoningTokens, 0);
    }

    public TokenUsage {
        if (promptTokens < 0 || cachedPromptTokens < 0 || completionTokens < 0 || reasoningTokens < 0 || imageInputTokens < 0) {
            throw new IllegalArgumentException("token counts must be >= 0");
        }
        if (cachedPromptTokens > promptTokens) {
            throw new IllegalArgumentException("cached prompt tokens exceed prompt tokens");
        }
        if (Math.addExact(cachedPromptTokens, imageInputTokens) > promptTokens) {
            throw new IllegalArgumentException("cached and image input tokens exceed prompt tokens");
        }
        if (reasoningTokens > completionTokens) {
            throw new IllegalArgumentException("reasoning tokens exceed completion tokens");
        }
    }

    public long totalTokens() {
        return Math.addExact(promptTokens, completionTokens);
    }
}
