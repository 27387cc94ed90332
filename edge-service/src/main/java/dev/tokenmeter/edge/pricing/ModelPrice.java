package dev.tokenmeter.edge.pricing;

import java.time.Instant;
import java.util.Objects;

/**
 * One row of {@code model_price}: whole nano-USD per {@code priceDivisor} tokens (1 for every row but the batch rows
 * whose half price is fractional, V35, ADR 0087), in force from {@code effectiveFrom} until the next row of the same
 * model and tier.
 *
 * @param cachedInputNanoUsdPerToken null: the model has no cached-input price; cached tokens cost the input price
 * @param outputNanoUsdPerToken      null: the model has no output (embeddings); output tokens then cost nothing
 *                                   (an embedding call reports none)
 * @param imageInputNanoUsdPerToken  null: image input tokens cost the input price (every text model); set for image
 *                                   models that price them apart (gpt-image-1, ADR 0085)
 * @param priceDivisor               the prices are per this many tokens, 1..{@value #MAX_PRICE_DIVISOR}; a call's cost
 *                                   is rounded once, half to even ({@link #costNanoUsd})
 */
public record ModelPrice(String model, ServiceTier tier, Instant effectiveFrom, long inputNanoUsdPerToken,
                         Long cachedInputNanoUsdPerToken, Long outputNanoUsdPerToken, String priceVersion,
                         Long imageInputNanoUsdPerToken, int priceDivisor) {

    /** {@code model_price.price_divisor}'s CHECK bound (V35). */
    public static final int MAX_PRICE_DIVISOR = 1000;

    /** A row priced per token (divisor 1). */
    public ModelPrice(String model, ServiceTier tier, Instant effectiveFrom, long inputNanoUsdPerToken,
                      Long cachedInputNanoUsdPerToken, Long outputNanoUsdPerToken, String priceVersion,
                      Long imageInputNanoUsdPerToken) {
        this(model, tier, effectiveFrom, inputNanoUsdPerToken, cachedInputNanoUsdPerToken, outputNanoUsdPerToken,
                priceVersion, imageInputNanoUsdPerToken, 1);
    }

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
        if (priceDivisor < 1 || priceDivisor > MAX_PRICE_DIVISOR) {
            throw new IllegalArgumentException("priceDivisor must be 1.." + MAX_PRICE_DIVISOR + " (" + priceVersion + ")");
        }
    }

    /**
     * Exact cost in nano-USD (see docs/adr/0040-pricing.md): (prompt − cached − image) × input + cached × (cached
     * price, or input) + image × (image input price, or input) + completion × output. Reasoning tokens are part of
     * completion and priced as output; image input tokens are 0 except for image models (ADR 0085). Overflow throws
     * instead of wrapping. A row with {@code priceDivisor} d > 1 prices per d tokens: that sum is divided by d once, the
     * remainder rounded half to even (ADR 0087), so a call is off its exact fractional cost by at most 0.5 nano-USD.
     */
    public long costNanoUsd(TokenUsage usage) {
        long uncached = Math.subtractExact(Math.subtractExact(usage.promptTokens(), usage.cachedPromptTokens()), usage.imageInputTokens());
        long cachedPrice = cachedInputNanoUsdPerToken != null ? cachedInputNanoUsdPerToken : inputNanoUsdPerToken;
        long imagePrice = imageInputNanoUsdPerToken != null ? imageInputNanoUsdPerToken : inputNanoUsdPerToken;
        long outputPrice = outputNanoUsdPerToken != null ? outputNanoUsdPerToken : 0L;
        long cost = Math.multiplyExact(uncached, inputNanoUsdPerToken);
        cost = Math.addExact(cost, Math.multiplyExact(usage.cachedPromptTokens(), cachedPrice));
        cost = Math.addExact(cost, Math.multiplyExact(usage.imageInputTokens(), imagePrice));
        cost = Math.addExact(cost, Math.multiplyExact(usage.completionTokens(), outputPrice));
        return divideHalfEven(cost, priceDivisor);
    }

    /** {@code numerator / divisor} rounded half to even, exactly (divisor >= 1). */
    static long divideHalfEven(long numerator, long divisor) {
        long q = Math.floorDiv(numerator, divisor);
        long twiceRemainder = 2 * Math.floorMod(numerator, divisor); // < 2 × divisor <= 2000: cannot overflow
        if (twiceRemainder > divisor || (twiceRemainder == divisor && (q & 1) != 0)) {
            return q + 1;
        }
        return q;
    }
}
