package dev.tokenmeter.notifier.delivery;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.notifier.webhook.Webhook;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

class AlertPayloadsTest {

    private static final UsageAlert ALERT = UsageAlert.newBuilder().setAlertId("u1|2026-12|80").setUserId("u1")
            .setTenantId("acme").setBillingMonth("2026-12").setThresholdPercent(80)
            .setCostNanoUsd(8_000_000_001L).setCreditNanoUsd(10_000_000_000L)
            .setCrossedAt(Instant.parse("2026-12-03T10:15:30Z")).setTriggeringEventId(null).setSource("aggregator").build();

    @Test
    void jsonCarriesExactMoneyAsIntegerAndDecimalString() throws Exception {
        JsonNode b = new ObjectMapper().readTree(AlertPayloads.body(ALERT, Webhook.Format.JSON, "d-1"));
        assertThat(b.get("alert_id").asText()).isEqualTo("u1|2026-12|80");
        assertThat(b.get("cost_nano_usd").isIntegralNumber()).isTrue();
        assertThat(b.get("cost_nano_usd").asLong()).isEqualTo(8_000_000_001L);
        assertThat(b.get("cost_usd").asText()).isEqualTo("8.000000001");
        assertThat(b.get("credit_usd").asText()).isEqualTo("10.000000000");
        assertThat(b.get("crossed_at").asText()).isEqualTo("2026-12-03T10:15:30Z");
        assertThat(b.get("triggering_event_id").isNull()).isTrue();
        assertThat(b.get("delivery_id").asText()).isEqualTo("d-1");
    }

    @Test
    void slackIsATextMessage() throws Exception {
        JsonNode b = new ObjectMapper().readTree(AlertPayloads.body(ALERT, Webhook.Format.SLACK, "d-1"));
        assertThat(b.fieldNames()).toIterable().containsExactly("text");
        assertThat(b.get("text").asText()).contains("u1").contains("acme").contains("80 %").contains("$8.000000001")
                .contains("$10.000000000");
    }

    @Test
    void theSameAlertAndWebhookGiveTheSameBytesAndDeliveryIdEveryTime() {
        UUID webhook = UUID.randomUUID();
        String id = AlertPayloads.deliveryId(ALERT.getAlertId(), webhook);
        assertThat(AlertPayloads.deliveryId(ALERT.getAlertId(), webhook)).isEqualTo(id);
        assertThat(AlertPayloads.deliveryId(ALERT.getAlertId(), UUID.randomUUID())).isNotEqualTo(id);
        assertThat(AlertPayloads.body(ALERT, Webhook.Format.JSON, id)).isEqualTo(AlertPayloads.body(ALERT, Webhook.Format.JSON, id));
    }
}
