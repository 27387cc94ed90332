package dev.tokenmeter.edge.pricing;

import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.Map;
import java.util.Optional;

import static org.assertj.core.api.Assertions.assertThat;

/** Issue 16: the tier the answer reports picks the row; one without a price is billed at standard and flagged. */
class TierPricingTest {

    private static final Instant AT = Instant.parse("2026-01-01T00:00:00Z");
    private static final ModelPrice STANDARD = new ModelPrice("gpt-5", AT, 1250, 125L, 10000L, "gpt-5@s");
    private static final ModelPrice FLEX = new ModelPrice("gpt-5", ServiceTier.FLEX, AT, 625, 63L, 5000L, "gpt-5@s:flex");
    private static final Map<ServiceTier, ModelPrice> CARD = Map.of(ServiceTier.STANDARD, STANDARD, ServiceTier.FLEX, FLEX);
    private static final ModelPrice MINI = new ModelPrice("gpt-5-mini", AT, 250, 25L, 2000L, "gpt-5-mini@s");
    private static final TierPricing TIERS = new TierPricing((model, tier, at) ->
            model.equals("gpt-5") ? Optional.ofNullable(CARD.get(tier))
                    : model.equals("gpt-5-mini") && tier == ServiceTier.STANDARD ? Optional.of(MINI) : Optional.empty());

    @Test
    void anAnsweredModelThatStandsForAnotherPricedModel_billsAtItsRow() {
        // ADR 0085: asked gpt-5, served by gpt-5-mini: gpt-5-mini's row.
        assertThat(TIERS.forAnswer(STANDARD, "gpt-5", "gpt-5-mini", "default", AT))
                .isEqualTo(new TierPricing.Answered(MINI, null, false));
        // Its tier row is missing: its standard row, flagged like any unpriced tier.
        assertThat(TIERS.forAnswer(FLEX, "gpt-5", "gpt-5-mini", "flex", AT))
                .isEqualTo(new TierPricing.Answered(MINI, "flex", false));
        // The same model, or none named: the estimate's row (and the reported tier's).
        assertThat(TIERS.forAnswer(STANDARD, "gpt-5", "gpt-5", "flex", AT)).isEqualTo(new TierPricing.Answered(FLEX, null, false));
        assertThat(TIERS.forAnswer(STANDARD, "gpt-5", null, null, AT)).isEqualTo(new TierPricing.Answered(STANDARD, null, false));
        // A name without a price: the requested model's row, flagged.
        assertThat(TIERS.forAnswer(STANDARD, "gpt-5", "mystery-1", null, AT)).isEqualTo(new TierPricing.Answered(STANDARD, null, true));
    }

    @Test
    void theReportedTiersRowBills() {
        assertThat(TIERS.forReported(STANDARD, "flex", AT)).isEqualTo(new TierPricing.Billing(FLEX, null));
        assertThat(TIERS.forReported(FLEX, "default", AT)).as("OpenAI's default is standard").isEqualTo(new TierPricing.Billing(STANDARD, null));
        assertThat(TIERS.forReported(FLEX, null, AT)).as("no tier in the answer: the estimate's").isEqualTo(new TierPricing.Billing(FLEX, null));
    }

    @Test
    void aTierWithoutARow_orAnUnknownWord_isBilledAtStandard_andFlagged() {
        assertThat(TIERS.forReported(FLEX, "priority", AT)).isEqualTo(new TierPricing.Billing(STANDARD, "priority"));
        assertThat(TIERS.forReported(STANDARD, "scale", AT)).isEqualTo(new TierPricing.Billing(STANDARD, "scale"));
    }

    @Test
    void theCostIsTokensTimesTheTiersPriceExactly() {
        TokenUsage usage = new TokenUsage(1_000_003, 400_001, 77_777, 5);
        long flex = (1_000_003 - 400_001) * 625L + 400_001 * 63L + 77_777 * 5000L;
        assertThat(TIERS.forReported(STANDARD, "flex", AT).price().costNanoUsd(usage)).isEqualTo(flex);
    }

    @Test
    void openAiTierWords() {
        assertThat(ServiceTier.ofOpenAi("default")).contains(ServiceTier.STANDARD);
        assertThat(ServiceTier.ofOpenAi("batch")).contains(ServiceTier.BATCH);
        assertThat(ServiceTier.ofOpenAi("auto")).isEmpty();
        assertThat(ServiceTier.requested("auto")).isEqualTo(ServiceTier.STANDARD);
        assertThat(ServiceTier.requested(null)).isEqualTo(ServiceTier.STANDARD);
        assertThat(ServiceTier.requested("priority")).isEqualTo(ServiceTier.PRIORITY);
    }
}
