package dev.tokenmeter.notifier.delivery;

import dev.tokenmeter.webhook.WebhookSignature;
import dev.tokenmeter.notifier.webhook.Webhook;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Clock;
import java.time.Duration;

/**
 * One attempt: POST the body to the webhook's URL, signed ({@link WebhookSignature}) with this attempt's timestamp,
 * bounded by the connect and request timeouts. Redirects are not followed; a 2xx is success, anything else (a status,
 * a timeout, a refused connection) a failed attempt. The response body is never read: the stream is closed at once.
 */
public final class WebhookSender {

    public static final String DELIVERY_HEADER = "Tokenmeter-Delivery";
    public static final String ALERT_HEADER = "Tokenmeter-Alert-Id";

    /** What an attempt came to: the HTTP status when there was one, else the transport error. */
    public record Outcome(boolean delivered, Integer httpStatus, String error) {
    }

    private final HttpClient client;
    private final Duration requestTimeout;
    private final Clock clock;

    public WebhookSender(DeliveryPolicy policy, Clock clock) {
        this.client = HttpClient.newBuilder()
                .connectTimeout(policy.connectTimeout())
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
        this.requestTimeout = policy.requestTimeout();
        this.clock = clock;
    }

    public Outcome send(Webhook webhook, String alertId, String deliveryId, byte[] body) throws InterruptedException {
        long timestamp = clock.instant().getEpochSecond();
        HttpRequest request;
        try {
            request = HttpRequest.newBuilder(URI.create(webhook.url()))
                    .timeout(requestTimeout)
                    .header("Content-Type", "application/json")
                    .header("User-Agent", "tokenmeter-alert-notifier")
                    .header(DELIVERY_HEADER, deliveryId)
                    .header(ALERT_HEADER, alertId)
                    .header(WebhookSignature.HEADER, WebhookSignature.header(webhook.secret(), timestamp, body))
                    .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                    .build();
        } catch (IllegalArgumentException e) {
            return new Outcome(false, null, "invalid url");
        }
        try {
            HttpResponse<InputStream> response = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
            response.body().close();
            int status = response.statusCode();
            return new Outcome(status >= 200 && status < 300, status, status >= 200 && status < 300 ? null : "HTTP " + status);
        } catch (HttpTimeoutException e) {
            return new Outcome(false, null, "timeout after " + requestTimeout.toMillis() + " ms");
        } catch (IOException e) {
            // The message of a connect error names host and port at most, never the path (a Slack URL's secret).
            return new Outcome(false, null, e.getClass().getSimpleName());
        }
    }
}
