package dev.tokenmeter.testkit.openai;

/**
 * Token usage the fake reports for one call, in OpenAI's terms.
 *
 * @param promptTokens       input tokens ({@code prompt_tokens} / {@code input_tokens}), cached ones included
 * @param cachedPromptTokens the part of {@code promptTokens} served from the prompt cache
 * @param completionTokens   output tokens ({@code completion_tokens} / {@code output_tokens}), reasoning included
 * @param reasoningTokens    the part of {@code completionTokens} spent on hidden reasoning
 */
public record Usage(long promptTokens, long cachedPromptTokens, long completionTokens, long reasoningTokens) {

    public Usage {
        if (promptTokens < 0 || cachedPromptTokens < 0 || completionTokens < 0 || reasoningTokens < 0) {
            throw new IllegalArgumentException("token counts must not be negative");
        }
        if (cachedPromptTokens > promptTokens) {
            throw new IllegalArgumentException("cachedPromptTokens > promptTokens");
        }
        if (reasoningTokens > completionTokens) {
            throw new IllegalArgumentException("reasoningTokens > completionTokens");
        }
    }

    public long totalTokens() {
        return promptTokens + completionTokens;
    }
}
