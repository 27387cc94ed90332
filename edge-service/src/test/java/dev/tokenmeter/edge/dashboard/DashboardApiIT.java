package dev.tokenmeter.edge.dashboard;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.Map;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 17, dashboard (ADR 0082): the page and its assets with their security headers on the admin listener (and
 * the user view on the public one), and the two read-only routes it adds, answered by the edge logged in as its
 * own database role: {@code /admin/pipeline} (reconciliation, dead letters, the billing sink's lag) and
 * {@code /admin/alerts} (the newest alerts, once per id).
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DashboardApiIT {

    private static final String ADMIN = "admin-" + UUID.randomUUID();
    /** The aggregator's consumer group the edge is told of; no aggregator runs here, the test commits for it. */
    private static final String AGGREGATOR_GROUP = "dash-aggregator-" + UUID.randomUUID();

    private Engines engines;
    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls admin;
    private final HttpClient http = HttpClient.newHttpClient();

    @BeforeAll
    void start(Engines engines) {
        this.engines = engines;
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of("ADMIN_TOKEN", ADMIN, "AGGREGATOR_APPLICATION_ID", AGGREGATOR_GROUP));
        admin = new ApiCalls(bed.adminUrl());
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    @Test
    void thePageAndItsAssetsCarryAStrictPolicyAndNeedNoToken_theDataRoutesDo() throws Exception {
        HttpResponse<String> page = get(bed.adminUrl() + "/admin/dashboard");
        assertThat(page.statusCode()).isEqualTo(200);
        assertThat(page.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/html");
        assertThat(page.headers().firstValue("Content-Security-Policy").orElseThrow())
                .contains("script-src 'self'").contains("connect-src 'self'").contains("frame-ancestors 'none'")
                .doesNotContain("unsafe");
        assertThat(page.headers().firstValue("Referrer-Policy")).contains("no-referrer");
        assertThat(page.body()).contains("dashboard/dashboard.js").doesNotContain(ADMIN);
        HttpResponse<String> js = get(bed.adminUrl() + "/admin/dashboard/dashboard.js");
        assertThat(js.statusCode()).isEqualTo(200);
        assertThat(js.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/javascript");
        assertThat(js.body()).contains("Authorization").doesNotContain("innerHTML").doesNotContain("console.log");
        assertThat(get(bed.adminUrl() + "/admin/dashboard/dashboard.css").statusCode()).isEqualTo(200);
        assertThat(get(bed.adminUrl() + "/admin/dashboard/..%2Flogback.xml").statusCode()).isEqualTo(404);
        assertThat(get(bed.adminUrl() + "/admin/dashboard/other.js").statusCode()).isEqualTo(404);

        // The public listener serves the user view, never the admin routes.
        assertThat(get(bed.baseUrl() + "/dashboard").statusCode()).isEqualTo(200);
        assertThat(get(bed.baseUrl() + "/admin/dashboard").statusCode()).isEqualTo(404);
        assertThat(get(bed.baseUrl() + "/admin/pipeline").statusCode()).isEqualTo(404);

        assertThat(admin.send("GET", "/admin/pipeline", null, null).statusCode()).isEqualTo(401);
        assertThat(admin.send("GET", "/admin/alerts", "wrong", null).statusCode()).isEqualTo(401);
        HttpResponse<String> badMonth = admin.send("GET", "/admin/pipeline?month=2026-13", ADMIN, null);
        assertThat(badMonth.statusCode()).isEqualTo(400);
        assertThat(badMonth.body()).contains("\"param\":\"month\"");
        for (String limit : new String[] {"0", "101", "x"}) {
            HttpResponse<String> bad = admin.send("GET", "/admin/alerts?limit=" + limit, ADMIN, null);
            assertThat(bad.statusCode()).as(limit).isEqualTo(400);
            assertThat(bad.body()).contains("\"param\":\"limit\"");
        }
    }

    @Test
    void pipelineShowsReconciliationDifferencesDeadLettersAndTheSinksLag() throws Exception {
        YearMonth month = YearMonth.now(ZoneOffset.UTC);
        // A monthly total without its ledger rows: the month does not reconcile for this user.
        String user = "dash-" + UUID.randomUUID();
        bed.db.insertInto(USAGE_TOTAL_MONTHLY).set(USAGE_TOTAL_MONTHLY.USER_ID, user).set(USAGE_TOTAL_MONTHLY.MODEL, "gpt-4o-mini")
                .set(USAGE_TOTAL_MONTHLY.KEY_SOURCE, "SERVICE_CREDIT").set(USAGE_TOTAL_MONTHLY.BILLING_MONTH, month.atDay(1))
                .set(USAGE_TOTAL_MONTHLY.TENANT_ID, "t").set(USAGE_TOTAL_MONTHLY.EVENT_COUNT, 2L)
                .set(USAGE_TOTAL_MONTHLY.SUCCEEDED_COUNT, 2L).set(USAGE_TOTAL_MONTHLY.FAILED_COUNT, 0L)
                .set(USAGE_TOTAL_MONTHLY.CANCELLED_COUNT, 0L).set(USAGE_TOTAL_MONTHLY.REJECTED_COUNT, 0L)
                .set(USAGE_TOTAL_MONTHLY.PROMPT_TOKENS, 30L).set(USAGE_TOTAL_MONTHLY.CACHED_PROMPT_TOKENS, 0L)
                .set(USAGE_TOTAL_MONTHLY.COMPLETION_TOKENS, 9L).set(USAGE_TOTAL_MONTHLY.REASONING_TOKENS, 0L)
                .set(USAGE_TOTAL_MONTHLY.COST_NANO_USD, 1_500_000_001L).set(USAGE_TOTAL_MONTHLY.REVISION, 1L).execute();
        bed.db.execute("INSERT INTO sink_dead_letter (topic, kafka_partition, kafka_offset, reason) VALUES (?, 0, 7, 'bad record')", bed.topic);
        // Three calls' events on usage-events; the sink (absent here) stored offset 1 for its ledger group.
        EdgeTestBed.User caller = bed.newUser(5_000_000_000L);
        for (int i = 0; i < 3; i++) {
            assertThat(bed.post("/v1/chat/completions", caller.key(), EdgeTestBed.chat("gpt-4o-mini", "hi " + i)).statusCode()).isEqualTo(200);
        }
        bed.awaitEvents(caller.userId(), 3, Duration.ofSeconds(30));
        bed.db.execute("INSERT INTO sink_offset (consumer_group, topic, kafka_partition, next_offset) VALUES ('sink-ledger', ?, 0, 1)", bed.topic);
        // The aggregator's group committed offset 1 on partition 0 of usage-events (none on the others).
        Map<String, Object> group = new java.util.HashMap<>(engines.kafka().clientProperties());
        group.put(org.apache.kafka.clients.consumer.ConsumerConfig.GROUP_ID_CONFIG, AGGREGATOR_GROUP);
        try (var c = new org.apache.kafka.clients.consumer.KafkaConsumer<>(group, new org.apache.kafka.common.serialization.ByteArrayDeserializer(),
                new org.apache.kafka.common.serialization.ByteArrayDeserializer())) {
            var p0 = new org.apache.kafka.common.TopicPartition(bed.topic, 0);
            c.assign(java.util.List.of(p0));
            c.commitSync(Map.of(p0, new org.apache.kafka.clients.consumer.OffsetAndMetadata(1)));
        }
        long expectedAggregatorLag; // from its committed offset on partition 0, from the beginning elsewhere
        try (var c = new org.apache.kafka.clients.consumer.KafkaConsumer<>(engines.kafka().clientProperties(),
                new org.apache.kafka.common.serialization.ByteArrayDeserializer(), new org.apache.kafka.common.serialization.ByteArrayDeserializer())) {
            var parts = c.partitionsFor(bed.topic).stream().map(i -> new org.apache.kafka.common.TopicPartition(i.topic(), i.partition())).toList();
            var begin = c.beginningOffsets(parts);
            var end = c.endOffsets(parts);
            expectedAggregatorLag = parts.stream().mapToLong(tp -> end.get(tp) - (tp.partition() == 0 ? 1 : begin.get(tp))).sum();
        }
        assertThat(expectedAggregatorLag).as("the three calls' events are behind the committed offset").isGreaterThanOrEqualTo(2);
        // The aggregator's dead-letter topic holds two records.
        String dlq = Topics.withPrefix(bed.topicPrefix, 1).deadLetter().name();
        engines.kafka().createTopic(dlq, 1);
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(engines.kafka().clientProperties(), new ByteArraySerializer(), new ByteArraySerializer())) {
            p.send(new ProducerRecord<>(dlq, new byte[] {1})).get();
            p.send(new ProducerRecord<>(dlq, new byte[] {2})).get();
        }

        HttpResponse<String> r = admin.send("GET", "/admin/pipeline?month=" + month, ADMIN, null);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        JsonNode n = ApiCalls.json(r);
        assertThat(n.at("/reconciliation/status").asText()).isEqualTo("differences");
        assertThat(n.at("/reconciliation/users_with_differences").asLong()).isEqualTo(1);
        assertThat(n.at("/reconciliation/differences/0/user_id").asText()).isEqualTo(user);
        assertThat(n.at("/reconciliation/differences/0/monthly_minus_ledger_events").asLong()).isEqualTo(2);
        assertThat(n.at("/reconciliation/differences/0/monthly_minus_ledger_cost_usd").asText()).isEqualTo("1.500000001");
        assertThat(n.at("/dead_letters/billing_sink/count").asLong()).isEqualTo(1);
        assertThat(n.at("/dead_letters/billing_sink/latest_at").asText()).isNotEmpty();
        assertThat(n.at("/dead_letters/alert_notifier/count").asLong()).isZero();
        assertThat(n.at("/dead_letters/aggregator/count").asLong()).isEqualTo(2);
        assertThat(n.at("/consumer_lag/0/consumer_group").asText()).isEqualTo("sink-ledger");
        assertThat(n.at("/consumer_lag/0/lag_records").asLong()).as(r.body()).isEqualTo(2);
        JsonNode aggregator = n.at("/consumer_lag/1");
        assertThat(aggregator.get("consumer_group").asText()).as(r.body()).isEqualTo(AGGREGATOR_GROUP);
        assertThat(aggregator.get("topics").asText()).isEqualTo(bed.topic);
        assertThat(aggregator.get("lag_records").asLong()).as(r.body()).isEqualTo(expectedAggregatorLag);

        // Another month: nothing to reconcile there.
        JsonNode other = ApiCalls.json(admin.send("GET", "/admin/pipeline?month=" + month.minusMonths(2), ADMIN, null));
        assertThat(other.at("/reconciliation/status").asText()).isEqualTo("reconciled");
        assertThat(other.at("/reconciliation/users").asLong()).isZero();
    }

    @Test
    void alertsAreTheNewestOncePerId() throws Exception {
        try (KafkaProducer<String, UsageAlert> p = new KafkaProducer<>(engines.kafka().clientProperties(),
                Topics.withPrefix(bed.topicPrefix, 1).alerts().keySerde().serializer(),
                Topics.withPrefix(bed.topicPrefix, 1).alerts().valueSerde().serializer())) {
            Instant t = Instant.parse("2026-12-01T10:00:00Z");
            // The same alert from the edge and (later) the aggregator: shown once, as first raised.
            p.send(new ProducerRecord<>(bed.alertsTopic, "u1", alert("u1|2026-12|50", 50, t, "edge"))).get();
            p.send(new ProducerRecord<>(bed.alertsTopic, "u1", alert("u1|2026-12|50", 50, t.plusSeconds(5), "aggregator"))).get();
            p.send(new ProducerRecord<>(bed.alertsTopic, "u1", alert("u1|2026-12|80", 80, t.plusSeconds(60), "edge"))).get();
        }
        HttpResponse<String> r = admin.send("GET", "/admin/alerts?limit=10", ADMIN, null);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        JsonNode data = ApiCalls.json(r).get("data");
        assertThat(data.size()).as(r.body()).isEqualTo(2);
        assertThat(data.at("/0/alert_id").asText()).isEqualTo("u1|2026-12|80");
        assertThat(data.at("/1/alert_id").asText()).isEqualTo("u1|2026-12|50");
        assertThat(data.at("/1/source").asText()).isEqualTo("edge");
        assertThat(data.at("/1/kind").asText()).isEqualTo("credit_threshold");
        assertThat(data.at("/1/cost_usd").asText()).isEqualTo("5.000000001");
        assertThat(data.at("/1/credit_usd").asText()).isEqualTo("10.000000000");
    }

    private static UsageAlert alert(String id, int threshold, Instant at, String source) {
        return UsageAlert.newBuilder().setAlertId(id).setUserId("u1").setTenantId("acme").setBillingMonth("2026-12")
                .setThresholdPercent(threshold).setCostNanoUsd(5_000_000_001L).setCreditNanoUsd(10_000_000_000L)
                .setCrossedAt(at).setTriggeringEventId(null).setSource(source).build();
    }

    private HttpResponse<String> get(String url) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }
}
