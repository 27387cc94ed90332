package dev.tokenmeter.notifier.webhook;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.notifier.delivery.Deliveries;
import dev.tokenmeter.notifier.delivery.DeliveryLog;
import dev.tokenmeter.notifier.delivery.DeliveryPolicy;
import dev.tokenmeter.notifier.delivery.RecordPosition;
import dev.tokenmeter.notifier.delivery.WebhookSender;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.PostgresEngine;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.ds.PGSimpleDataSource;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.tokenmeter.db.jooq.Tables.WEBHOOK_DEAD_LETTER;
import static dev.tokenmeter.db.jooq.Tables.WEBHOOK_DELIVERY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * The admin API and the delivery rules on a real Postgres, in process, as the notifier's own role (V18's grants):
 * PATCH (disable, rotate the secret), the deliveries listing, 404s; a webhook disabled while its delivery is retried
 * is dead-lettered with that reason; two copies of one alert in flight make one request; an alert whose delivery is
 * final is not sent again.
 */
@ExtendWith(EnginesExtension.class)
class WebhookAdminAndDeliveriesIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TOKEN = "admin-token-0123456789";

    private final PostgresEngine postgres;
    private HttpServer receiver;
    private final AtomicInteger requests = new AtomicInteger();
    private volatile int answer = 500;
    /** Requests to /held wait for this; at most how many were inside at once. */
    private final java.util.concurrent.CountDownLatch releaseHeld = new java.util.concurrent.CountDownLatch(1);
    private final AtomicInteger heldNow = new AtomicInteger();
    private final AtomicInteger heldMax = new AtomicInteger();
    private final AtomicInteger fastDone = new AtomicInteger();
    private WebhookStore store;
    private DeliveryLog deliveryLog;
    private DSLContext db;
    private Deliveries deliveries;
    private WebhookAdminApi api;
    private HttpClient client;

    WebhookAdminAndDeliveriesIT(PostgresEngine postgres) {
        this.postgres = postgres;
    }

    @BeforeEach
    void setUp() throws Exception {
        String url = postgres.createMigratedDatabase("webhooks");
        DatabaseLogin login = postgres.login(ServiceLogins.NOTIFIER);
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl(url);
        ds.setUser(login.user());
        ds.setPassword(login.password());
        db = DSL.using(ds, SQLDialect.POSTGRES);
        store = new WebhookStore(db);
        deliveryLog = new DeliveryLog(db);
        DeliveryPolicy policy = new DeliveryPolicy(Duration.ofMinutes(5), Duration.ofMillis(100), Duration.ofMillis(200),
                Duration.ofSeconds(2), Duration.ofSeconds(30), 2);
        deliveries = new Deliveries(store, deliveryLog, new WebhookSender(policy, Clock.systemUTC()), policy, Clock.systemUTC());
        api = new WebhookAdminApi("127.0.0.1", 0, TOKEN, store, deliveryLog).start();
        client = HttpClient.newHttpClient();
        receiver = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        receiver.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        receiver.createContext("/held", ex -> {
            try (ex) {
                ex.getRequestBody().readAllBytes();
                heldMax.accumulateAndGet(heldNow.incrementAndGet(), Math::max);
                try {
                    releaseHeld.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    heldNow.decrementAndGet();
                }
                ex.sendResponseHeaders(200, -1);
            }
        });
        receiver.createContext("/fast", ex -> {
            try (ex) {
                ex.getRequestBody().readAllBytes();
                fastDone.incrementAndGet();
                ex.sendResponseHeaders(204, -1);
            }
        });
        receiver.createContext("/", ex -> {
            try (ex) {
                ex.getRequestBody().readAllBytes();
                requests.incrementAndGet();
                if (answer == 200) {
                    // Slow enough that a second copy of the alert arrives while this one is in flight.
                    try {
                        Thread.sleep(300);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                ex.sendResponseHeaders(answer, -1);
            }
        });
        receiver.start();
    }

    @AfterEach
    void tearDown() {
        releaseHeld.countDown();
        deliveries.stop();
        api.close();
        receiver.stop(0);
        client.close();
    }

    @Test
    void patchDisablesAndRotatesAndTheDeliveriesListingShowsTheLog() throws Exception {
        JsonNode created = JSON.readTree(send("POST", "/admin/webhooks",
                "{\"tenant_id\":\"acme\",\"url\":\"" + receiverUrl() + "\",\"format\":\"slack\",\"secret\":\"my-own-secret-0123456789\"}", 201));
        String id = created.get("id").asText();
        assertThat(created.get("secret").asText()).isEqualTo("my-own-secret-0123456789");
        assertThat(created.get("format").asText()).isEqualTo("slack");

        JsonNode fetched = JSON.readTree(send("GET", "/admin/webhooks/" + id, null, 200));
        assertThat(fetched.has("secret")).as("GET never shows the secret").isFalse();
        JsonNode rotated = JSON.readTree(send("PATCH", "/admin/webhooks/" + id, "{\"rotate_secret\":true,\"enabled\":false}", 200));
        assertThat(rotated.get("secret").asText()).startsWith("whsec_").isNotEqualTo("my-own-secret-0123456789");
        assertThat(rotated.get("enabled").asBoolean()).isFalse();
        assertThat(store.get(UUID.fromString(id)).orElseThrow().secret()).isEqualTo(rotated.get("secret").asText());
        assertThat(store.enabledFor("acme")).as("a disabled webhook gets nothing").isEmpty();

        send("PATCH", "/admin/webhooks/" + id, "{\"format\":\"xml\"}", 400);
        send("PATCH", "/admin/webhooks/" + UUID.randomUUID(), "{\"enabled\":true}", 404);
        send("GET", "/admin/webhooks/not-a-uuid", null, 404);
        send("GET", "/admin/webhooks/" + id + "/deliveries?limit=0", null, 400);

        deliveryLog.begin("u1|2026-12|50", UUID.fromString(id));
        JsonNode listed = JSON.readTree(send("GET", "/admin/webhooks/" + id + "/deliveries", null, 200));
        assertThat(listed.get("data")).hasSize(1);
        assertThat(listed.get("data").get(0).get("status").asText()).isEqualTo("pending");
    }

    @Test
    void aWebhookDisabledWhileItsDeliveryIsRetriedIsDeadLetteredWithThatReason() throws Exception {
        Webhook hook = store.create("acme", receiverUrl(), "secret-0123456789abcdef", Webhook.Format.JSON, true);
        answer = 500;
        CompletableFuture<Void> done = deliveries.deliver(alert("u1|2026-12|50"), new RecordPosition("t", 0, 7));
        await("a few failed attempts").atMost(Duration.ofSeconds(30)).until(() -> requests.get() >= 2);
        store.update(hook.id(), null, null, null, false);
        done.get(30, TimeUnit.SECONDS);
        assertThat(db.select(WEBHOOK_DELIVERY.STATUS).from(WEBHOOK_DELIVERY).fetchSingle().value1()).isEqualTo("dead_letter");
        var dead = db.selectFrom(WEBHOOK_DEAD_LETTER).fetchSingle();
        assertThat(dead.getReason()).startsWith("webhook disabled after");
        assertThat(dead.getBody()).contains("\"alert_id\":\"u1|2026-12|50\"");
        assertThat(dead.getKafkaOffset()).isEqualTo(7L);
    }

    @Test
    void twoCopiesInFlightMakeOneRequestAndAFinalDeliveryIsNotSentAgain() throws Exception {
        store.create("acme", receiverUrl(), "secret-0123456789abcdef", Webhook.Format.JSON, true);
        answer = 200;
        UsageAlert alert = alert("u2|2026-12|80");
        CompletableFuture<Void> first = deliveries.deliver(alert, new RecordPosition("t", 0, 1));
        CompletableFuture<Void> second = deliveries.deliver(alert, new RecordPosition("t", 0, 2));
        CompletableFuture.allOf(first, second).get(30, TimeUnit.SECONDS);
        assertThat(requests.get()).isEqualTo(1);
        deliveries.deliver(alert, new RecordPosition("t", 0, 3)).get(30, TimeUnit.SECONDS);
        assertThat(requests.get()).as("the delivered row stops a third copy").isEqualTo(1);
        assertThat(db.select(WEBHOOK_DELIVERY.STATUS, WEBHOOK_DELIVERY.ATTEMPTS).from(WEBHOOK_DELIVERY).fetchSingle().intoArray())
                .containsExactly("delivered", 1);
    }

    /** DELIVERY_CONCURRENCY_PER_ENDPOINT bounds the requests to one endpoint; another endpoint's go on meanwhile. */
    @Test
    void aSlowEndpointGetsAtMostItsConcurrencyAndHoldsUpNoOtherEndpoint() throws Exception {
        String base = "http://127.0.0.1:" + receiver.getAddress().getPort();
        store.create("acme", base + "/held", "secret-0123456789abcdef", Webhook.Format.JSON, true);
        store.create("acme", base + "/fast", "secret-0123456789abcdef", Webhook.Format.JSON, true);
        List<CompletableFuture<Void>> all = new java.util.ArrayList<>();
        for (int i = 0; i < 6; i++) {
            all.add(deliveries.deliver(alert("u" + i + "|2026-12|50"), new RecordPosition("t", 0, i)));
        }
        await("the fast endpoint got all six while the slow one holds its requests")
                .atMost(Duration.ofSeconds(20)).until(() -> fastDone.get() == 6);
        await("the slow endpoint's lanes are full").atMost(Duration.ofSeconds(10)).until(() -> heldNow.get() == 2);
        assertThat(heldMax.get()).as("never more than DELIVERY_CONCURRENCY_PER_ENDPOINT (2) at once").isEqualTo(2);
        releaseHeld.countDown();
        CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
        assertThat(heldMax.get()).isEqualTo(2);
        assertThat(db.selectCount().from(WEBHOOK_DELIVERY).where(WEBHOOK_DELIVERY.STATUS.eq("delivered")).fetchSingle().value1())
                .isEqualTo(12);
    }

    private String receiverUrl() {
        return "http://127.0.0.1:" + receiver.getAddress().getPort() + "/hook";
    }

    private static UsageAlert alert(String id) {
        return UsageAlert.newBuilder().setAlertId(id).setUserId(id.substring(0, id.indexOf('|'))).setTenantId("acme")
                .setBillingMonth("2026-12").setThresholdPercent(50).setCostNanoUsd(5_000_000_000L).setCreditNanoUsd(10_000_000_000L)
                .setCrossedAt(Instant.now()).setTriggeringEventId(null).setSource("aggregator").build();
    }

    private String send(String method, String path, String body, int expected) throws Exception {
        HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + api.port() + path))
                .header("Authorization", "Bearer " + TOKEN)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as("%s %s: %s", method, path, r.body()).isEqualTo(expected);
        return r.body();
    }
}
