package dev.tokenmeter.edge.proxy.batch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceCard;
import dev.tokenmeter.edge.pricing.ServiceTier;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Batch lines are billed once each, at the batch row, with ids that do not depend on who reads them (ADR 0087). */
class BatchBillingTest {

    private static final Instant AT = Instant.parse("2026-12-04T12:00:00Z");
    /** gpt-4o-mini's batch row (V35): 150 / 75 / 600 nano-USD per 2 tokens, half of the standard price. */
    private static final ModelPrice MINI_BATCH = new ModelPrice("gpt-4o-mini", ServiceTier.BATCH,
            Instant.parse("2024-07-18T00:00:00Z"), 150, 75L, 600L, "gpt-4o-mini@2024-07-18:batch", null, 2);
    private static final PriceCard CARD = (model, tier, at) -> tier == ServiceTier.BATCH
            && (model.equals("gpt-4o-mini") || model.equals("gpt-4o-mini-2024-07-18")) ? Optional.of(MINI_BATCH) : Optional.empty();

    private static String answered(String customId, String model, int prompt, int cached, int completion) {
        return "{\"id\":\"batch_req_1\",\"custom_id\":\"" + customId + "\",\"response\":{\"status_code\":200,\"request_id\":\"r\","
                + "\"body\":{\"object\":\"chat.completion\",\"model\":\"" + model + "\",\"usage\":{\"prompt_tokens\":" + prompt
                + ",\"completion_tokens\":" + completion + ",\"total_tokens\":" + (prompt + completion)
                + ",\"prompt_tokens_details\":{\"cached_tokens\":" + cached + "}}}},\"error\":null}";
    }

    @Test
    void eachAnsweredLineCostsItsTokensTimesTheBatchPriceAndFailedLinesNothing() {
        String file = answered("a", "gpt-4o-mini-2024-07-18", 100, 20, 7) + "\n"
                + answered("b", "gpt-4o-mini-2024-07-18", 11, 3, 3) + "\n"
                + "{\"id\":\"batch_req_3\",\"custom_id\":\"c\",\"response\":{\"status_code\":500,\"body\":{\"error\":{}}},\"error\":null}\n"
                + "{\"id\":\"batch_req_4\",\"custom_id\":\"d\",\"response\":null,\"error\":{\"code\":\"batch_expired\"}}\n"
                + answered("a", "gpt-4o-mini-2024-07-18", 100, 20, 7) + "\n"  // a repeated line bills nothing more
                + "garbage\n";
        BatchBilling.Bill bill = new BatchBilling(CARD).bill("batch_abc", file.getBytes(StandardCharsets.UTF_8),
                Map.of("a", "gpt-4o-mini", "b", "gpt-4o-mini", "c", "gpt-4o-mini", "d", "gpt-4o-mini"), AT);
        assertThat(bill.lines()).extracting(BatchBilling.BilledLine::customId).containsExactly("a", "b");
        // a: 80 x 75 + 20 x 37.5 + 7 x 300 = 8850 exactly; b: 8 x 75 + 3 x 37.5 + 3 x 300 = 1612.5, rounded once
        // half to even (ADR 0087) to 1612.
        assertThat(bill.lines().get(0).costNanoUsd()).isEqualTo(80 * 75 + 20 * 75 / 2 + 7 * 300).isEqualTo(8850);
        assertThat(bill.lines().get(1).costNanoUsd()).isEqualTo(1612);
        assertThat(bill.totalNanoUsd()).isEqualTo(8850 + 1612);
        assertThat(bill.unpricedCustomIds()).isEmpty();
    }

    @Test
    void idsDependOnlyOnBatchAndCustomIdSoASecondReadBillsTheSameEvents() {
        String file = answered("a", "gpt-4o-mini", 5, 0, 1) + "\n" + answered("b", "gpt-4o-mini", 5, 0, 1) + "\n";
        BatchBilling billing = new BatchBilling(CARD);
        BatchBilling.Bill first = billing.bill("batch_abc", file.getBytes(StandardCharsets.UTF_8), Map.of(), AT);
        BatchBilling.Bill again = new BatchBilling(CARD).bill("batch_abc", file.getBytes(StandardCharsets.UTF_8), Map.of(), AT);
        assertThat(again.lines()).extracting(BatchBilling.BilledLine::eventId)
                .containsExactlyElementsOf(first.lines().stream().map(BatchBilling.BilledLine::eventId).toList())
                .doesNotHaveDuplicates();
        assertThat(BatchBilling.eventId("batch_abc", "a")).isEqualTo(first.lines().get(0).eventId())
                .isNotEqualTo(BatchBilling.eventId("batch_abd", "a"));
        // The batch id's length is part of the name: ("ab", "c:d") and ("ab:c", "d") are different events.
        assertThat(BatchBilling.eventId("ab", "c:d")).isNotEqualTo(BatchBilling.eventId("ab:c", "d"));
        assertThat(BatchBilling.reservationId("batch_abc")).isEqualTo(BatchBilling.reservationId("batch_abc"))
                .isNotEqualTo(BatchBilling.eventId("batch_abc", ""));
    }

    @Test
    void anUnpricedAnswerFallsBackToTheRequestedModelElseIsListedNotDropped() {
        String file = answered("a", "gpt-9-unknown", 10, 0, 2) + "\n" + answered("b", "gpt-9-unknown", 10, 0, 2) + "\n";
        BatchBilling.Bill bill = new BatchBilling(CARD).bill("batch_x", file.getBytes(StandardCharsets.UTF_8),
                Map.of("a", "gpt-4o-mini"), AT);
        assertThat(bill.lines()).singleElement().satisfies(l -> {
            assertThat(l.customId()).isEqualTo("a");
            assertThat(l.model()).isEqualTo("gpt-4o-mini");
            assertThat(l.costNanoUsd()).isEqualTo(10 * 75 + 2 * 300);
        });
        assertThat(bill.unpricedCustomIds()).containsExactly("b");
    }
}
