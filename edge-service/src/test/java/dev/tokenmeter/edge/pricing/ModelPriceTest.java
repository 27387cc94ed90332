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

    @Test
    void overflowThrowsInsteadOfWrapping() {
        ModelPrice huge = new ModelPrice("m", Instant.EPOCH, Long.MAX_VALUE / 2, null, 1L, "m@0");
        assertThatThrownBy(() -> huge.costNanoUsd(new TokenUsage(3, 0, 0, 0))).isInstanceOf(ArithmeticException.class);
    }
}
