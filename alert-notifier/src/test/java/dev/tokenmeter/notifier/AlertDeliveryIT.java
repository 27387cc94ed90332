package dev.tokenmeter.notifier;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.alert.UsageAlertIds;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.ServiceAcls;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.support.FreePorts;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 17, "Alerts that arrive": the shipped notifier jar (env only, its own database role and Kafka principal)
 * against real Kafka and Postgres and a receiver that verifies every signature. Tenant acme has three webhooks: one
 * that fails the first two attempts of every delivery (JSON), a Slack one, and one slower than the request timeout;
 * tenant globex one that always answers 500. Along the way the notifier is SIGKILLed while the receiver holds one
 * alert's request (the one window where a delivery can reach an endpoint twice: the receiver drops the repeated
 * delivery id), and the receiver is down for a while. In the end: exactly one accepted delivery per alert and
 * endpoint, one delivery-log row each, dead letters with their reason for the slow and the failing endpoint and for
 * a record that is no alert, and the group's offsets at the end of the topic.
 */
@ExtendWith(EnginesExtension.class)
class AlertDeliveryIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration RETRY_FOR = Duration.ofSeconds(40);
    private static final String MONTH = YearMonth.now().toString();

    @TempDir
    Path work;

    @Test
    void everyAlertArrivesOncePerEndpointThroughFailuresAKillAndAnOutage(Engines engines) throws Exception {
        String jdbcUrl = engines.postgres().createMigratedDatabase("notifier");
        DatabaseLogin login = engines.postgres().login(ServiceLogins.NOTIFIER);
        String prefix = Names.unique("notifier") + ".";
        Topics topics = Topics.withPrefix(prefix, 2);
        engines.kafka().createTopic(topics.alerts().name(), 2);
        String groupId = prefix + "alert-notifier";
        Map<String, String> kafkaEnv;
        if (engines.kafka().secured()) {
            String user = prefix + "notifier";
            String password = "pw-" + UUID.randomUUID();
            engines.kafka().createPrincipal(user, password);
            engines.kafka().createAcls(ServiceAcls.notifier(user, topics, groupId));
            kafkaEnv = engines.kafka().clientSettings(user, password).env();
        } else {
            kafkaEnv = engines.kafka().clientEnv();
        }
        int adminPort = FreePorts.pick();
        String adminToken = "adm-" + UUID.randomUUID();
        Map<String, String> env = new HashMap<>(kafkaEnv);
        env.put("TOPIC_PREFIX", prefix);
        env.put("GROUP_ID", groupId);
        env.put("INSTANCE_ID", "notifier-it-1");
        env.put("DATABASE_URL", jdbcUrl);
        env.put("DATABASE_USER", login.user());
        env.put("DATABASE_PASSWORD", login.password());
        env.put("ADMIN_PORT", Integer.toString(adminPort));
        env.put("ADMIN_TOKEN", adminToken);
        env.put("DELIVERY_RETRY_FOR", RETRY_FOR.toSeconds() + "s");
        env.put("DELIVERY_BACKOFF_INITIAL", "200ms");
        env.put("DELIVERY_BACKOFF_MAX", "1s");
        env.put("DELIVERY_REQUEST_TIMEOUT", "1s");
        env.put("DELIVERY_CONCURRENCY_PER_ENDPOINT", "2");
        // Under target/, kept after the run to read what the jar did.
        Path log = Path.of("target", "it-logs", prefix + "alert-notifier.log").toAbsolutePath();

        try (WebhookReceiver receiver = new WebhookReceiver(FreePorts.pick()).up();
             KafkaProducer<String, UsageAlert> alerts = new KafkaProducer<>(engines.kafka().clientProperties(
                     Map.of(ProducerConfig.ACKS_CONFIG, "all")), new StringSerializer(), EventSerdes.usageAlert().serializer());
             KafkaProducer<String, byte[]> raw = new KafkaProducer<>(engines.kafka().clientProperties(),
                     new StringSerializer(), new ByteArraySerializer())) {
            ChildJvm notifier = ChildJvm.shippedJar("alert-notifier", env, log, "-Xmx192m", "-XX:+UseSerialGC").start();
            try {
                notifier.awaitPrinted("READY group=", Duration.ofSeconds(90), List.of());
                String admin = "http://127.0.0.1:" + adminPort;
                assertThat(call(admin, "GET", "/admin/webhooks", "wrong-token-0123456789", null).statusCode()).isEqualTo(401);
                assertThat(call(admin, "POST", "/admin/webhooks", adminToken, "{\"tenant_id\":\"acme\",\"url\":\"ftp://x\"}").statusCode())
                        .isEqualTo(400);
                Map<String, UUID> webhookOf = new HashMap<>();
                register(admin, adminToken, receiver, webhookOf, "acme", "/flaky", "json", WebhookReceiver.Behaviour.FAIL_FIRST_TWO);
                register(admin, adminToken, receiver, webhookOf, "acme", "/slack", "slack", WebhookReceiver.Behaviour.OK);
                register(admin, adminToken, receiver, webhookOf, "acme", "/slow", "json", WebhookReceiver.Behaviour.SLOW);
                register(admin, adminToken, receiver, webhookOf, "globex", "/failing", "json", WebhookReceiver.Behaviour.ALWAYS_500);
                JsonNode listed = JSON.readTree(call(admin, "GET", "/admin/webhooks?tenant_id=acme", adminToken, null).body());
                assertThat(listed.get("data")).hasSize(3);
                assertThat(listed.toString()).as("a listing never shows a secret").doesNotContain("secret");

                // Batch 1: four acme alerts (one of them twice, from both writers), one to be held, one of globex, one
                // of a tenant without webhooks, and a record that is no alert.
                List<String> acme = new ArrayList<>();
                for (int i = 1; i <= 4; i++) {
                    acme.add(send(alerts, topics, "user-" + i, "acme", 80, "aggregator"));
                }
                send(alerts, topics, "user-1", "acme", 80, "edge"); // same alert id: delivered once
                String held = send(alerts, topics, "user-held", "acme", 100, "aggregator");
                acme.add(held);
                receiver.hold(held);
                String globex = send(alerts, topics, "user-g", "globex", 50, "aggregator");
                send(alerts, topics, "user-n", "initech", 50, "aggregator");
                raw.send(new ProducerRecord<>(topics.alerts().name(), "garbage", "not avro".getBytes(StandardCharsets.UTF_8))).get();
                alerts.flush();

                assertThat(receiver.awaitHeld(Duration.ofSeconds(60))).as("the held alert's request arrives").isTrue();
                List<String> batchOneOthers = acme.stream().filter(a -> !a.equals(held)).toList();
                await("batch 1 delivered to /flaky (past its two failures) while /slow still retries")
                        .atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                        .until(() -> statuses(jdbcUrl, engines, webhookOf.get("/flaky")).entrySet().stream()
                                .filter(e -> batchOneOthers.contains(e.getKey())).filter(e -> e.getValue().equals("delivered")).count() == 4);
                assertThat(statuses(jdbcUrl, engines, webhookOf.get("/slow")).values())
                        .as("the slow endpoint's deliveries are still being retried: it held up nothing else").containsOnly("pending");
                await("an attempt to /slow ends at the request timeout").atMost(Duration.ofSeconds(30))
                        .until(() -> lastErrors(jdbcUrl, engines, webhookOf.get("/slow")).contains("timeout after 1000 ms"));

                // SIGKILL while the receiver holds one request; then the receiver answers it (accepted, never recorded).
                notifier.kill();
                receiver.release();
                // The receiver is down while the notifier comes back and more alerts arrive.
                receiver.down();
                for (int i = 5; i <= 7; i++) {
                    acme.add(send(alerts, topics, "user-" + i, "acme", 50, "aggregator"));
                }
                alerts.flush();
                notifier.start();
                notifier.awaitPrinted("READY group=", Duration.ofSeconds(90), List.of());
                await("the notifier fails against the receiver that is down")
                        .atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                        .until(() -> lastErrors(jdbcUrl, engines, webhookOf.get("/slack")).stream().anyMatch(e -> e.contains("Connect")));
                receiver.up();

                await("every acme alert delivered to /flaky and /slack, the rest dead-lettered")
                        .atMost(RETRY_FOR.plusSeconds(60)).pollInterval(Duration.ofMillis(500))
                        .until(() -> !statuses(jdbcUrl, engines, null).containsValue("pending")
                                && statuses(jdbcUrl, engines, webhookOf.get("/slack")).size() == acme.size());

                for (String path : List.of("/flaky", "/slack")) {
                    assertThat(statuses(jdbcUrl, engines, webhookOf.get(path))).as("%s: one delivery-log row per alert", path)
                            .containsOnlyKeys(acme).allSatisfy((a, st) -> assertThat(st).isEqualTo("delivered"));
                    Map<String, Long> acceptedPerAlert = receiver.received().stream()
                            .filter(r -> r.path().equals(path) && r.answered() == 200)
                            .collect(Collectors.groupingBy(WebhookReceiver.Received::alertId,
                                    Collectors.mapping(WebhookReceiver.Received::deliveryId, Collectors.toSet())))
                            .entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> (long) e.getValue().size()));
                    assertThat(acceptedPerAlert).as("%s: one delivery id answered 2xx per alert", path)
                            .containsOnlyKeys(acme).allSatisfy((a, n) -> assertThat(n).isEqualTo(1L));
                    assertThat(receiver.accepted(path)).as(path).hasSize(acme.size());
                }
                assertThat(receiver.received()).as("every request carried a valid signature")
                        .allSatisfy(r -> assertThat(r.signatureValid()).as(r.path() + " " + r.alertId()).isTrue());
                assertThat(receiver.received().stream().filter(r -> r.path().equals("/flaky") && batchOneOthers.contains(r.alertId())))
                        .as("/flaky answered 503 twice per delivery first").filteredOn(r -> r.answered() == 503)
                        .hasSize(2 * batchOneOthers.size());
                String[] heldAt = receiver.heldDelivery().split(" ");
                assertThat(receiver.received()).as("the held delivery was sent again after the kill, with the same id")
                        .filteredOn(r -> r.path().equals(heldAt[0]) && r.deliveryId().equals(heldAt[1])).hasSizeGreaterThanOrEqualTo(2);
                JsonNode slack = JSON.readTree(receiver.received().stream().filter(r -> r.path().equals("/slack")).findFirst().orElseThrow().body());
                assertThat(slack.get("text").asText()).contains("acme").contains("% of its monthly credit");

                assertThat(statuses(jdbcUrl, engines, webhookOf.get("/slow"))).as("/slow never answered in time")
                        .containsOnlyKeys(acme).allSatisfy((a, s) -> assertThat(s).isEqualTo("dead_letter"));
                assertThat(statuses(jdbcUrl, engines, webhookOf.get("/failing"))).containsExactly(Map.entry(globex, "dead_letter"));
                Map<String, String> reasons = deadLetters(jdbcUrl, engines);
                assertThat(reasons.get(globex + " " + webhookOf.get("/failing"))).contains("retries exhausted").contains("HTTP 500");
                assertThat(reasons.get(acme.get(0) + " " + webhookOf.get("/slow"))).contains("retries exhausted");
                assertThat(reasons).as("the bad record, set aside by its position").containsValue("not a UsageAlert: SerializationException");

                await("the group's offsets reach the end of the topic once every outcome is recorded")
                        .atMost(Duration.ofSeconds(30)).until(() -> committedAtEnd(engines, topics.alerts().name(), groupId));
            } finally {
                ChildJvm.Stopped stopped = notifier.terminate(Duration.ofSeconds(30));
                assertThat(stopped.killed()).as("the notifier stops on SIGTERM").isFalse();
            }
            assertThat(java.nio.file.Files.readString(log)).as("no secret in the notifier's output")
                    .doesNotContain(adminToken).doesNotContain(login.password()).doesNotContain("whsec_");
        }
    }

    private static void register(String admin, String token, WebhookReceiver receiver, Map<String, UUID> ids, String tenant,
                                 String path, String format, WebhookReceiver.Behaviour behaviour) throws Exception {
        HttpResponse<String> r = call(admin, "POST", "/admin/webhooks", token,
                "{\"tenant_id\":\"" + tenant + "\",\"url\":\"" + receiver.url(path) + "\",\"format\":\"" + format + "\"}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
        JsonNode w = JSON.readTree(r.body());
        assertThat(w.get("secret").asText()).startsWith("whsec_");
        receiver.endpoint(path, behaviour);
        receiver.secret(path, w.get("secret").asText());
        ids.put(path, UUID.fromString(w.get("id").asText()));
    }

    private static String send(KafkaProducer<String, UsageAlert> producer, Topics topics, String user, String tenant,
                               int threshold, String source) throws Exception {
        String id = UsageAlertIds.of(user, YearMonth.parse(MONTH), threshold);
        UsageAlert alert = UsageAlert.newBuilder().setAlertId(id).setUserId(user).setTenantId(tenant).setBillingMonth(MONTH)
                .setThresholdPercent(threshold).setCostNanoUsd(threshold * 100_000_000L).setCreditNanoUsd(10_000_000_000L)
                .setCrossedAt(Instant.now()).setTriggeringEventId(null).setSource(source).build();
        producer.send(new ProducerRecord<>(topics.alerts().name(), user, alert)).get();
        return id;
    }

    private static HttpResponse<String> call(String base, String method, String path, String token, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).header("Authorization", "Bearer " + token)
                .timeout(Duration.ofSeconds(30));
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        try (HttpClient client = HttpClient.newHttpClient()) {
            return client.send(b.build(), HttpResponse.BodyHandlers.ofString());
        }
    }

    /** alert id → status of the delivery to that webhook (every webhook's when null). */
    private static Map<String, String> statuses(String url, Engines engines, UUID webhook) throws Exception {
        Map<String, String> m = new HashMap<>();
        try (Connection c = DriverManager.getConnection(url, engines.postgres().user(), engines.postgres().password());
             ResultSet rs = c.createStatement().executeQuery("SELECT alert_id, status, webhook_id FROM webhook_delivery")) {
            while (rs.next()) {
                if (webhook == null || webhook.toString().equals(rs.getString(3))) {
                    m.put(rs.getString(1) + (webhook == null ? " " + rs.getString(3) : ""), rs.getString(2));
                }
            }
        }
        return m;
    }

    private static List<String> lastErrors(String url, Engines engines, UUID webhook) throws Exception {
        List<String> errors = new ArrayList<>();
        try (Connection c = DriverManager.getConnection(url, engines.postgres().user(), engines.postgres().password());
             ResultSet rs = c.createStatement().executeQuery("SELECT last_error FROM webhook_delivery WHERE webhook_id = '"
                     + webhook + "' AND last_error IS NOT NULL")) {
            while (rs.next()) {
                errors.add(rs.getString(1));
            }
        }
        return errors;
    }

    /** "alert webhook" (or "topic-partition-offset" for a bad record) → reason. */
    private static Map<String, String> deadLetters(String url, Engines engines) throws Exception {
        Map<String, String> m = new HashMap<>();
        try (Connection c = DriverManager.getConnection(url, engines.postgres().user(), engines.postgres().password());
             ResultSet rs = c.createStatement().executeQuery(
                     "SELECT alert_id, webhook_id, reason, topic, kafka_partition, kafka_offset FROM webhook_dead_letter")) {
            while (rs.next()) {
                String key = rs.getString(1) == null ? rs.getString(4) + "-" + rs.getInt(5) + "-" + rs.getLong(6)
                        : rs.getString(1) + " " + rs.getString(2);
                assertThat(m.put(key, rs.getString(3))).as("one dead letter per delivery or record: " + key).isNull();
            }
        }
        return m;
    }

    private static boolean committedAtEnd(Engines engines, String topic, String groupId) throws Exception {
        try (Admin admin = Admin.create(engines.kafka().clientProperties())) {
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(groupId)
                    .partitionsToOffsetAndMetadata().get();
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            for (int p = 0; p < 2; p++) {
                latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
            }
            var ends = admin.listOffsets(latest).all().get();
            return ends.entrySet().stream().allMatch(e -> e.getValue().offset() == 0
                    || (committed.get(e.getKey()) != null && committed.get(e.getKey()).offset() == e.getValue().offset()));
        }
    }
}
