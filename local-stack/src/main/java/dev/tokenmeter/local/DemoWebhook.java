package dev.tokenmeter.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import dev.tokenmeter.notifier.delivery.WebhookSender;
import dev.tokenmeter.webhook.WebhookSignature;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/**
 * The demo's webhook (issue 17): a receiver on this machine, registered through the alert-notifier's admin API for one
 * tenant, that verifies each delivery's signature as a tenant would (module alert-notifier's README), drops a
 * repeated delivery id, and keeps what arrived for the run's summary.
 */
final class DemoWebhook implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One alert as the receiver accepted it. */
    record Arrived(String alertId, int thresholdPercent, String costUsd) {
    }

    private final HttpServer server;
    private final Set<String> deliveryIds = ConcurrentHashMap.newKeySet();
    private final List<Arrived> arrived = new CopyOnWriteArrayList<>();
    private volatile String secret;
    private volatile int badSignatures;

    private DemoWebhook() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/alerts", ex -> {
            try (ex; InputStream in = ex.getRequestBody()) {
                byte[] body = in.readAllBytes();
                if (secret == null || !WebhookSignature.verify(secret, ex.getRequestHeaders().getFirst(WebhookSignature.HEADER),
                        body, System.currentTimeMillis() / 1000, Duration.ofMinutes(5))) {
                    badSignatures++;
                    ex.sendResponseHeaders(401, -1);
                    return;
                }
                if (deliveryIds.add(ex.getRequestHeaders().getFirst(WebhookSender.DELIVERY_HEADER))) {
                    JsonNode alert = JSON.readTree(body);
                    arrived.add(new Arrived(alert.get("alert_id").asText(), alert.get("threshold_percent").asInt(),
                            alert.get("cost_usd").asText()));
                }
                ex.sendResponseHeaders(204, -1);
            }
        });
        server.start();
    }

    /** Starts the receiver and registers it for {@code tenantId} through the notifier's admin API. */
    static DemoWebhook register(Stack.NotifierAdmin admin, String tenantId, PrintStream out) throws Exception {
        DemoWebhook hook = new DemoWebhook();
        String url = "http://127.0.0.1:" + hook.server.getAddress().getPort() + "/alerts";
        try (HttpClient client = HttpClient.newHttpClient()) {
            HttpResponse<String> r = client.send(HttpRequest.newBuilder(admin.baseUrl().resolve("/admin/webhooks"))
                    .header("Authorization", "Bearer " + admin.token()).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(
                            java.util.Map.of("tenant_id", tenantId, "url", url, "format", "json"))))
                    .build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 201) {
                hook.close();
                throw new IllegalStateException("the notifier refused the demo webhook: HTTP " + r.statusCode() + " " + r.body());
            }
            JsonNode created = JSON.readTree(r.body());
            hook.secret = created.get("secret").asText();
            out.println("webhook     " + url + " for tenant " + tenantId + " (id " + created.get("id").asText() + ")");
        }
        return hook;
    }

    List<Arrived> arrived() {
        return List.copyOf(arrived);
    }

    int badSignatures() {
        return badSignatures;
    }

    URI url() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/alerts");
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
