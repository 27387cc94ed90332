package dev.tokenmeter.edge;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;
import static dev.tokenmeter.db.jooq.Tables.PLAN;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 3, soft and hard limits at the edge: thresholds crossed at reserve or at settle are published as
 * {@code UsageAlert}s once per threshold and month, and admitted answers carry the soft-limit warning once usage is
 * at or over the soft limit. Real quota engine (Redis), Postgres and Kafka; usage moved with the metering API, which
 * decides through the same gate as the proxy.
 */
@ExtendWith(EnginesExtension.class)
class EdgeAlertsIT {

    /** gpt-4o-mini@2024-07-18 input price (seed migration V3): 1,000 prompt tokens are 1 % of the credit below. */
    private static final long IN = 150;
    private static final long CREDIT = 100_000 * IN;
    private static final String PROXY_CALL =
            "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

    @Test
    void crossingFiftyEightyAndHundredPublishesOneAlertEach_andTheSoftLimitHeaderFollowsUsage(Engines engines) throws Exception {
        try (FakeOpenAi openAi = FakeOpenAi.start(); EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of());
             KafkaConsumer<String, UsageAlert> alerts = alertConsumer(engines, bed.alertsTopic)) {
            User user = bed.newUser(CREDIT);
            // 70 %, apart from the 80 % threshold, so the header and the alerts can be told apart.
            String planId = bed.db.select(ACCOUNT.PLAN_ID).from(ACCOUNT).where(ACCOUNT.USER_ID.eq(user.userId())).fetchOne(ACCOUNT.PLAN_ID);
            bed.db.update(PLAN).set(PLAN.SOFT_LIMIT_PERCENT, 70).where(PLAN.PLAN_ID.eq(planId)).execute();
            ApiCalls api = new ApiCalls(bed.baseUrl());

            assertNoSoftLimitHeader(bed.post("/v1/chat/completions", user.key(), PROXY_CALL));

            // ~55 % reserved: crosses 50 at reserve. Released, then crossed again by the next reservation: no new alert.
            JsonNode first = reserve(api, user, 55_000);
            assertThat(first.path("soft_limit_reached").asBoolean()).isFalse();
            release(api, user, first.path("reservation_id").asText());
            JsonNode second = reserve(api, user, 60_000);
            assertThat(second.path("soft_limit_reached").asBoolean()).isFalse();
            commit(api, user, second.path("reservation_id").asText(), 60_000);
            assertNoSoftLimitHeader(bed.post("/v1/chat/completions", user.key(), PROXY_CALL));

            // ~75 %: past the 70 % soft limit, below the 80 % threshold.
            JsonNode third = reserve(api, user, 15_000);
            assertThat(third.path("soft_limit_reached").asBoolean()).isTrue();
            assertThat(third.path("soft_limit_percent").asInt()).isEqualTo(70);
            commit(api, user, third.path("reservation_id").asText(), 15_000);
            HttpResponse<String> warned = bed.post("/v1/chat/completions", user.key(), PROXY_CALL);
            assertThat(warned.statusCode()).as(warned.body()).isEqualTo(200);
            assertThat(warned.headers().firstValue("x-tokenmeter-soft-limit-reached")).hasValue("true");
            assertThat(warned.headers().firstValue("x-tokenmeter-soft-limit-percent")).hasValue("70");

            // The proxy settles after answering: wait for it, so the costs below are exact.
            await("the proxy call settled").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);

            // Reserved at ~79 %, settled at ~85 %: the actual cost crosses 80 at settle.
            JsonNode fourth = reserve(api, user, 4_000);
            String settleEventId = commit(api, user, fourth.path("reservation_id").asText(), 10_000);

            // The proxy: a call whose estimate (5,000 completion tokens, 20 %) does not fit is refused, which crosses
            // 100 % (the hard limit); its alert names the refused call's event. A refusal carries no soft-limit warning.
            HttpResponse<String> refused = bed.post("/v1/chat/completions", user.key(),
                    "{\"model\":\"gpt-4o-mini\",\"max_tokens\":5000,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
            assertThat(refused.headers().firstValue("x-tokenmeter-soft-limit-reached")).isEmpty();
            String refusedEventId = refused.headers().firstValue("x-tokenmeter-event-id").orElseThrow();

            YearMonth month = bed.quotaEngine.currentMonth();
            List<UsageAlert> seen = new ArrayList<>();
            // One key, one partition, one sending thread: anything published before the 100 % alert (a repeated 50 %,
            // a soft-limit alert) is on the topic before it.
            await("the 100 % alert on " + bed.alertsTopic).atMost(Duration.ofSeconds(30)).until(() -> {
                for (ConsumerRecord<String, UsageAlert> r : alerts.poll(Duration.ofMillis(200))) {
                    assertThat(r.key()).isEqualTo(r.value().getUserId());
                    seen.add(r.value());
                }
                return seen.stream().anyMatch(a -> a.getThresholdPercent() == 100);
            });
            assertThat(seen).extracting(UsageAlert::getAlertId)
                    .containsExactly(user.userId() + "|" + month + "|50", user.userId() + "|" + month + "|80",
                            user.userId() + "|" + month + "|100");
            UsageAlert fifty = seen.get(0);
            UsageAlert eighty = seen.get(1);
            for (UsageAlert a : seen) {
                assertThat(a.getUserId()).isEqualTo(user.userId());
                assertThat(a.getTenantId()).isEqualTo(user.tenantId());
                assertThat(a.getBillingMonth()).isEqualTo(month.toString());
                assertThat(a.getCreditNanoUsd()).isEqualTo(CREDIT);
                assertThat(a.getSource()).isEqualTo("edge");
            }
            assertThat(fifty.getThresholdPercent()).isEqualTo(50);
            // Committed at reserve: the proxy call's cost plus the 55 % reservation.
            assertThat(fifty.getCostNanoUsd()).isBetween(55_000 * IN, 56_000 * IN);
            assertThat(fifty.getTriggeringEventId()).as("the metering API names no event at reserve").isNull();
            // Settled at settle: 60 + 15 + 10 % plus the three small proxy calls.
            assertThat(eighty.getCostNanoUsd()).isEqualTo(bed.usedNanoUsd(user.userId())).isBetween(85_000 * IN, 86_000 * IN);
            assertThat(eighty.getTriggeringEventId()).isEqualTo(settleEventId);
            UsageAlert hundred = seen.get(2);
            assertThat(hundred.getTriggeringEventId()).isEqualTo(refusedEventId);
            assertThat(hundred.getCostNanoUsd()).as("committed usage when refused").isEqualTo(eighty.getCostNanoUsd());
        }
    }

    private static void assertNoSoftLimitHeader(HttpResponse<String> r) {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        assertThat(r.headers().firstValue("x-tokenmeter-soft-limit-reached")).isEmpty();
        assertThat(r.headers().firstValue("x-tokenmeter-soft-limit-percent")).isEmpty();
    }

    private static JsonNode reserve(ApiCalls api, User user, long promptTokens) throws Exception {
        HttpResponse<String> r = api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini\",\"estimated_prompt_tokens\":" + promptTokens + ",\"max_completion_tokens\":0}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
        return ApiCalls.json(r);
    }

    private static void release(ApiCalls api, User user, String reservationId) throws Exception {
        HttpResponse<String> r = api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/release", user.key(), null);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    }

    /** Commits {@code promptTokens} of actual usage; returns the commit's event id. */
    private static String commit(ApiCalls api, User user, String reservationId, long promptTokens) throws Exception {
        HttpResponse<String> r = api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/commit", user.key(),
                "{\"prompt_tokens\":" + promptTokens + ",\"completion_tokens\":0}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return ApiCalls.json(r).path("event_id").asText();
    }

    private static KafkaConsumer<String, UsageAlert> alertConsumer(Engines engines, String topic) {
        Properties props = new Properties();
        props.putAll(engines.kafka().clientProperties());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        KafkaConsumer<String, UsageAlert> consumer =
                new KafkaConsumer<>(props, new StringDeserializer(), EventSerdes.usageAlert().deserializer());
        TopicPartition tp = new TopicPartition(topic, 0);
        consumer.assign(List.of(tp));
        consumer.seekToBeginning(List.of(tp));
        return consumer;
    }
}
