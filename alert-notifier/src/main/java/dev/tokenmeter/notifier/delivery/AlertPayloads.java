package dev.tokenmeter.notifier.delivery;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.notifier.webhook.Webhook;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * The body of a delivery, built from the alert only (no send time), so every attempt and every restart sends the
 * same bytes: the notifier's JSON (money as integer nano-USD and as an exact decimal USD string), or a Slack
 * incoming-webhook message. The delivery id is the same for one alert and one webhook forever; receivers drop a
 * repeated id (the one case a delivery can arrive twice: the notifier stopped between the endpoint's 2xx and
 * recording it).
 */
public final class AlertPayloads {

    private static final ObjectMapper JSON = new ObjectMapper();

    private AlertPayloads() {
    }

    /** Stable per (alert, webhook): a name-based UUID. */
    public static String deliveryId(String alertId, UUID webhookId) {
        return UUID.nameUUIDFromBytes(("tokenmeter-delivery:" + alertId + "|" + webhookId).getBytes(StandardCharsets.UTF_8)).toString();
    }

    public static byte[] body(UsageAlert alert, Webhook.Format format, String deliveryId) {
        ObjectNode root = JSON.createObjectNode();
        if (format == Webhook.Format.SLACK) {
            root.put("text", slackText(alert));
        } else {
            root.put("type", "usage_alert");
            root.put("delivery_id", deliveryId);
            root.put("alert_id", alert.getAlertId());
            root.put("tenant_id", alert.getTenantId());
            root.put("user_id", alert.getUserId());
            root.put("billing_month", alert.getBillingMonth());
            root.put("threshold_percent", alert.getThresholdPercent());
            root.put("cost_nano_usd", alert.getCostNanoUsd());
            root.put("credit_nano_usd", alert.getCreditNanoUsd());
            root.put("cost_usd", Money.formatUsd(alert.getCostNanoUsd()));
            root.put("credit_usd", Money.formatUsd(alert.getCreditNanoUsd()));
            root.put("crossed_at", alert.getCrossedAt().toString());
            root.put("source", alert.getSource());
            if (alert.getTriggeringEventId() == null) {
                root.putNull("triggering_event_id");
            } else {
                root.put("triggering_event_id", alert.getTriggeringEventId());
            }
        }
        try {
            return JSON.writeValueAsBytes(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("cannot write an alert's JSON", e);
        }
    }

    static String slackText(UsageAlert alert) {
        return ":warning: tokenmeter: user `" + alert.getUserId() + "` (tenant `" + alert.getTenantId() + "`) reached "
                + alert.getThresholdPercent() + " % of its monthly credit for " + alert.getBillingMonth() + ": "
                + Money.formatUsdForHumans(alert.getCostNanoUsd()) + " of " + Money.formatUsdForHumans(alert.getCreditNanoUsd())
                + " (alert " + alert.getAlertId() + ")";
    }
}
