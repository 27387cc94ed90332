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

    /** gpt-5's batch row (V35): the standard 1250 / 125 / 10000 per 2 tokens, as 62.5 nano-USD per cached token is not whole. */
    private static final ModelPrice GPT_5_BATCH = new ModelPrice("gpt-5", ServiceTier.BATCH, Instant.parse("2025-08-07T00:00:00Z"),
            1250, 125L, 10000L, "gpt-5@2025-08-07:batch", null, 2);

    @Test
    void aDivisorRowRoundsEachCallOnceHalfToEven() {
        // Only cached tokens: 3 x 62.5 = 187.5 -> 188 (188 is even); 1 x 62.5 = 62.5 -> 62 (62 is even).
        assertThat(GPT_5_BATCH.costNanoUsd(new TokenUsage(3, 3, 0, 0))).isEqualTo(188);
        assertThat(GPT_5_BATCH.costNanoUsd(new TokenUsage(1, 1, 0, 0))).isEqualTo(62);
        // 5 x 62.5 = 312.5 -> 312 (even); 7 x 62.5 = 437.5 -> 438 (even).
        assertThat(GPT_5_BATCH.costNanoUsd(new TokenUsage(5, 5, 0, 0))).isEqualTo(312);
        assertThat(GPT_5_BATCH.costNanoUsd(new TokenUsage(7, 7, 0, 0))).isEqualTo(438);
        // One rounding per call, not per dimension: 10 input (6250) + 3 cached (187.5) + 4 output (20000) = 26437.5 -> 26438.
        assertThat(GPT_5_BATCH.costNanoUsd(new TokenUsage(13, 3, 4, 0))).isEqualTo(6250 + 20000 + 188);
        // An even cached count is exact: half of the standard cost to the nano-USD.
        ModelPrice standard = new ModelPrice("gpt-5", Instant.parse("2025-08-07T00:00:00Z"), 1250, 125L, 10000L, "gpt-5@2025-08-07");
        TokenUsage even = new TokenUsage(1000, 400, 300, 100);
        assertThat(GPT_5_BATCH.costNanoUsd(even) * 2).isEqualTo(standard.costNanoUsd(even));
        // Within 0.5 nano-USD of the exact cost for every count (here 0..999 cached tokens).
        for (long n = 0; n < 1000; n++) {
            long twice = standard.costNanoUsd(new TokenUsage(n, n, 0, 0));
            assertThat(Math.abs(2 * GPT_5_BATCH.costNanoUsd(new TokenUsage(n, n, 0, 0)) - twice)).as("n=" + n).isLessThanOrEqualTo(1);
        }
    }

    @Test
    void divisorOneLeavesEveryCostExactAndTheDivisorIsBounded() {
        assertThat(GPT_4O.priceDivisor()).isEqualTo(1);
        assertThat(GPT_4O.costNanoUsd(new TokenUsage(3, 1, 1, 0))).isEqualTo(2 * 2500L + 1250L + 10000L);
        assertThat(ModelPrice.divideHalfEven(7, 3)).isEqualTo(2);   // 2.33
        assertThat(ModelPrice.divideHalfEven(8, 3)).isEqualTo(3);   // 2.67
        assertThat(ModelPrice.divideHalfEven(5, 2)).isEqualTo(2);   // 2.5 -> even
        assertThat(ModelPrice.divideHalfEven(15, 10)).isEqualTo(2); // 1.5 -> even
        assertThat(ModelPrice.divideHalfEven(Long.MAX_VALUE, 1000)).isEqualTo(Long.MAX_VALUE / 1000 + 1); // .807
        assertThatThrownBy(() -> new ModelPrice("m", ServiceTier.BATCH, Instant.EPOCH, 1, null, null, "m@0", null, 0))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new ModelPrice("m", ServiceTier.BATCH, Instant.EPOCH, 1, null, null, "m@0", null, 1001))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
