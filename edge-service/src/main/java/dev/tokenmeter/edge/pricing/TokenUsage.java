package dev.tokenmeter.edge.pricing;

/**
 * Token counts of one call, in OpenAI's terms: cached tokens are part of prompt tokens, reasoning tokens are part
 * of completion tokens.
 */
public record TokenUsage(long promptTokens, long cachedPromptTokens, long completionTokens, long reasoningTokens) {

    public static final TokenUsage NONE = new TokenUsage(0, 0, 0, 0);

    public TokenUsage {
        if (promptTokens < 0 || cachedPromptTokens < 0 || completionTokens < 0 || reasoningTokens < 0) {
            throw new IllegalArgumentException("token counts must be >= 0");
        }
        if (cachedPromptTokens > promptTokens) {
            throw new IllegalArgumentException("cached prompt tokens exceed prompt tokens");
        }
        if (reasoningTokens > completionTokens) {
            throw new IllegalArgumentException("reasoning tokens exceed completion tokens");
        }
    }

    public long totalTokens() {
        return Math.addExact(promptTokens, completionTokens);
    }
}
