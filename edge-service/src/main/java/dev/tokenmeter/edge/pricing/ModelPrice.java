package dev.tokenmeter.edge.pricing;

import java.time.Instant;
import java.util.Objects;

/**
 * One row of {@code model_price}: whole nano-USD per token, in force from {@code effectiveFrom} until the next
 * row of the same model and tier.
 *
 * @param cachedInputNanoUsdPerToken null: the model has no cached-input price; cached tokens cost the input price
 * @param outputNanoUsdPerToken      null: the model has no output (embeddings); output tokens then cost nothing
 *                                   (an embedding call reports none)
 * @param imageInputNanoUsdPerToken  null: image input tokens cost the input price (every text model); set for image
 *                                   models that price them apart (gpt-image-1, ADR 0085)
 */
public record ModelPrice(String model, ServiceTier tier, Instant effectiveFrom, long inputNanoUsdPerToken,
                         Long cachedInputNanoUsdPerToken, Long outputNanoUsdPerToken, String priceVersion,
                         Long imageInputNanoUsdPerToken) {

    /** A row without an image input price. */
    public ModelPrice(String model, ServiceTier tier, Instant effectiveFrom, long inputNanoUsdPerToken,
                      Long cachedInputNanoUsdPerToken, Long outputNanoUsdPerToken, String priceVersion) {
        this(model, tier, effectiveFrom, inputNanoUsdPerToken, cachedInputNanoUsdPerToken, outputNanoUsdPerToken,
                priceVersion, null);
    }

    /** A standard-tier row. */
    public ModelPrice(String model, Instant effectiveFrom, long inputNanoUsdPerToken, Long cachedInputNanoUsdPerToken,
                      Long outputNanoUsdPerToken, String priceVersion) {
        this(model, ServiceTier.STANDARD, effectiveFrom, inputNanoUsdPerToken, cachedInputNanoUsdPerToken,
                outputNanoUsdPerToken, priceVersion);
    }

    public ModelPrice {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(tier, "tier");
        Objects.requireNonNull(effectiveFrom, "effectiveFrom");
        Objects.requireNonNull(priceVersion, "priceVersion");
        if (inputNanoUsdPerToken < 0 || (cachedInputNanoUsdPerToken != null && cachedInputNanoUsdPerToken < 0)
                || (outputNanoUsdPerToken != null && outputNanoUsdPerToken < 0)
                || (imageInputNanoUsdPerToken != null && imageInputNanoUsdPerToken < 0)) {
            throw new IllegalArgumentException("prices must be >= 0 (" + priceVersion + ")");
        }
    }

    /**
     * Exact cost in nano-USD (see docs/adr/0040-pricing.md): (prompt − cached − image) × input + cached × (cached
     * price, or input) + image × (image input price, or input) + completion × output. Reasoning tokens are part of
     * completion and priced as output; image input tokens are 0 except for image models (ADR 0085). Overflow throws
     * instead of wrapping.
     */
    public long costNanoUsd(TokenUsage usage) {
        long uncached = Math.subtractExact(Math.subtractExact(usage.promptTokens(), usage.cachedPromptTokens()), usage.imageInputTokens());
        long cachedPrice = cachedInputNanoUsdPerToken != null ? cachedInputNanoUsdPerToken : inputNanoUsdPerToken;
        long imagePrice = imageInputNanoUsdPerToken != null ? imageInputNanoUsdPerToken : inputNanoUsdPerToken;
        long outputPrice = outputNanoUsdPerToken != null ? outputNanoUsdPerToken : 0L;
        long cost = Math.multiplyExact(uncached, inputNanoUsdPerToken);
        cost = Math.addExact(cost, Math.multiplyExact(usage.cachedPromptTokens(), cachedPrice));
        cost = Math.addExact(cost, Math.multiplyExact(usage.imageInputTokens(), imagePrice));
        return Math.addExact(cost, Math.multiplyExact(usage.completionTokens(), outputPrice));
    }
}
