package dev.tokenmeter.edge.pricing;

import java.time.Instant;
import java.util.Optional;

/**
 * Which row bills a call once the upstream has said which tier served it (ADR 0068): the request's tier only
 * drove the estimate; the {@code service_tier} in the answer decides the price. A reported tier the price card has
 * no row for (or a word we do not know, e.g. {@code scale}) is billed at the standard row and flagged: the call
 * happened, refusing to bill it is not an option, and the flag lets finance find and re-price it.
 */
public final class TierPricing {

    /** Attribute of an event billed at standard because the reported tier had no price. */
    public static final String UNPRICED_TIER = "unpriced_tier";

    /** The row to bill and, when it is not the reported tier's, the tier that had no price (else null). */
    public record Billing(ModelPrice price, String unpricedTier) {
    }

    private final PriceCard card;

    public TierPricing(PriceCard card) {
        this.card = card;
    }

    /** Attribute of an event whose answered model has no price: billed at the requested model's row (ADR 0085). */
    public static final String UNPRICED_ANSWERED_MODEL = "unpriced_answered_model";

    /**
     * The row that bills a call once its answer named the model that served it and the tier (ADR 0085, extending
     * ADR 0068): when the answered model stands (by its own rows or an alias, never the default price) for another
     * priced model than the estimate's, that model's row bills, in the estimate's tier (else its standard row); then
     * the reported tier picks the row as {@link #forReported} does. An answered name without a price leaves the
     * estimate's model and is flagged {@link #UNPRICED_ANSWERED_MODEL}.
     *
     * @param requested     the name the caller sent
     * @param answeredModel the name in the answer, null when none (or out of bounds)
     */
    public Answered forAnswer(ModelPrice estimated, String requested, String answeredModel, String reportedTier, Instant at) {
        ModelPrice base = estimated;
        boolean unpricedAnswer = false;
        if (answeredModel != null && !answeredModel.equals(requested) && !answeredModel.equals(estimated.model())) {
            String priced = card.resolvedModel(answeredModel, at);
            if (priced == null) {
                unpricedAnswer = true;
            } else if (!priced.equals(estimated.model())) {
                base = card.priceAt(priced, estimated.tier(), at)
                        .or(() -> card.priceAt(priced, ServiceTier.STANDARD, at))
                        .orElse(estimated);
            }
        }
        Billing billing = forReported(base, reportedTier, at);
        return new Answered(billing.price(), billing.unpricedTier(), unpricedAnswer);
    }

    /** {@link Billing} plus whether the answered model had no price. */
    public record Answered(ModelPrice price, String unpricedTier, boolean unpricedAnsweredModel) {
    }

    /**
     * @param estimated    the row the call was estimated with (its model is the priced model, aliases resolved)
     * @param reportedTier the answer's {@code service_tier}; null when it named none (then the estimate's tier)
     */
    public Billing forReported(ModelPrice estimated, String reportedTier, Instant at) {
        if (reportedTier == null) {
            return new Billing(estimated, null);
        }
        Optional<ServiceTier> tier = ServiceTier.ofOpenAi(reportedTier);
        if (tier.isPresent() && tier.get() == estimated.tier()) {
            return new Billing(estimated, null);
        }
        if (tier.isPresent()) {
            Optional<ModelPrice> own = card.priceAt(estimated.model(), tier.get(), at);
            if (own.isPresent()) {
                return new Billing(own.get(), null);
            }
        }
        // The upstream's word goes into the event's attributes: kept only when it looks like a tier name.
        String unpriced = reportedTier.matches("[A-Za-z0-9_-]{1,32}") ? reportedTier : "unrecognised";
        ModelPrice standard = estimated.tier() == ServiceTier.STANDARD ? estimated
                : card.priceAt(estimated.model(), ServiceTier.STANDARD, at).orElse(estimated);
        return new Billing(standard, unpriced);
    }
}
