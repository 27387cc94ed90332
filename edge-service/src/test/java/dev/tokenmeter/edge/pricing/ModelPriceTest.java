package dev.tokenmeter.edge.pricing;

import org.junit.jupiter.api.Test;

import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelPriceTest {

    private static final ModelPrice GPT_4O = new ModelPrice("gpt-4o", Instant.parse("2024-10-01T00:00:00Z"), 2500, 1250L, 10000L, "gpt-4o@2024-10-01");
    private static final ModelPrice EMBED = new ModelPrice("text-embedding-3-small", Instant.parse("2024-01-25T00:00:00Z"), 20, null, null, "e@1");

    @Test
    void cachedTokensArePartOfPromptAndReasoningIsPricedAsOutput() {
        // 1,000 prompt of which 400 cached, 300 completion of which 100 reasoning.
        long cost = GPT_4O.costNanoUsd(new TokenUsage(1000, 400, 300, 100));
        assertThat(cost).isEqualTo(600 * 2500L + 400 * 1250L + 300 * 10000L);
        assertThat(cost).isEqualTo(5_000_000L); // exactly $0.005
    }

    @Test
    void missingCachedPriceFallsBackToInputAndMissingOutputPriceCostsNothing() {
        assertThat(EMBED.costNanoUsd(new TokenUsage(100, 30, 0, 0))).isEqualTo(100 * 20L);
    }

    /** gpt-image-1@2025-04-23 (V27_1): text input, cached, output, image input nano-USD per token (ADR 0085). */
    private static final ModelPrice GPT_IMAGE_1 = new ModelPrice("gpt-image-1", ServiceTier.STANDARD,
            Instant.parse("2025-04-23T00:00:00Z"), 5000, 1250L, 40000L, "gpt-image-1@2025-04-23", 10000L);

    @Test
    void imageInputTokensArePartOfPromptAndPricedApart() {
        // 50 input tokens: 10 text (2 of them cached) + 40 image; 4160 output (one high-quality 1024x1024 image).
        long cost = GPT_IMAGE_1.costNanoUsd(new TokenUsage(50, 2, 4160, 0, 40));
        assertThat(cost).isEqualTo(8 * 5000L + 2 * 1250L + 40 * 10000L + 4160 * 40000L);
        // A row without an image price bills image tokens at the input price: the text formula, unchanged.
        assertThat(GPT_4O.costNanoUsd(new TokenUsage(50, 2, 10, 0, 40))).isEqualTo(GPT_4O.costNanoUsd(new TokenUsage(50, 2, 10, 0)));
        assertThatThrownBy(() -> new TokenUsage(50, 20, 0, 0, 40)).as("cached + image > prompt")
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void overflowThrowsInsteadOfWrapping() {
        ModelPrice huge = new ModelPrice("m", Instant.EPOCH, Long.MAX_VALUE / 2, null, 1L, "m@0");
        assertThatThrownBy(() -> huge.costNanoUsd(new TokenUsage(3, 0, 0, 0))).isInstanceOf(ArithmeticException.class);
    }
}
