package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.edge.crypto.PersonalKeyCipher;
import dev.tokenmeter.events.UserLimit;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Issue 4, "Accounts and keys": the admin API on real Postgres and Kafka. */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AdminApiIT {

    private static final String ADMIN = "admin-" + UUID.randomUUID();
    private static final String MASTER_KEY = Base64.getEncoder().encodeToString(new byte[32]);

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls api;
    private KafkaConsumer<String, UserLimit> limits;
    private final List<UserLimit> seenLimits = new ArrayList<>();

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        String prefix = Names.unique("admin") + ".";
        engines.kafka().createCompactedTopic(prefix + "user-limits", 1);
        bed = new EdgeTestBed(engines, openAi, Map.of("ADMIN_TOKEN", ADMIN, "TOPIC_PREFIX", prefix,
                "PERSONAL_KEY_MASTER_KEY", MASTER_KEY, "API_KEY_CACHE_TTL", "30s"));
        api = new ApiCalls(bed.adminUrl());
        Properties props = new Properties();
        props.putAll(engines.kafka().clientProperties());
        limits = new KafkaConsumer<>(props, new StringDeserializer(), EventSerdes.userLimit().deserializer());
        TopicPartition tp = new TopicPartition(prefix + "user-limits", 0);
        limits.assign(List.of(tp));
        limits.seekToBeginning(List.of(tp));
    }

    @AfterAll
    void stop() {
        limits.close();
        bed.close();
        openAi.close();
    }

    private synchronized List<UserLimit> limitsOf(String userId) {
        for (ConsumerRecord<String, UserLimit> r : limits.poll(Duration.ofMillis(200))) {
            assertThat(r.key()).isEqualTo(r.value().getUserId());
            seenLimits.add(r.value());
        }
        return seenLimits.stream().filter(l -> l.getUserId().equals(userId)).toList();
    }

    private String newPlan(String credit) throws Exception {
        String planId = "plan-" + UUID.randomUUID().toString().substring(0, 8);
        HttpResponse<String> r = api.send("PUT", "/admin/plans/" + planId, ADMIN,
                "{\"monthly_credit_usd\":\"" + credit + "\",\"requests_per_minute\":60,\"tokens_per_minute\":100000}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
        return planId;
    }

    private String newUser(String planId) throws Exception {
        String userId = "u-" + UUID.randomUUID().toString().substring(0, 8);
        HttpResponse<String> r = api.send("POST", "/admin/users", ADMIN,
                "{\"user_id\":\"" + userId + "\",\"tenant_id\":\"t-1\",\"plan_id\":\"" + planId + "\"}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
        return userId;
    }

    /** Issue 13: operators' routes are on their own listener, never on the public OpenAI-compatible port. */
    @Test
    void adminApiAndMetricsAreServedOnTheAdminListenerOnly() throws Exception {
        String planId = newPlan("3");
        String userId = newUser(planId);
        assertThat(bed.app.server().adminPort()).isNotEqualTo(bed.app.server().port());
        ApiCalls publicPort = new ApiCalls(bed.baseUrl());
        String[][] operatorRoutes = {
                {"GET", "/admin/users/" + userId, null},
                {"POST", "/admin/users", "{\"user_id\":\"x\",\"tenant_id\":\"t\",\"plan_id\":\"" + planId + "\"}"},
                {"PUT", "/admin/plans/" + planId, "{\"monthly_credit_usd\":\"1\"}"},
                {"PATCH", "/admin/users/" + userId, "{\"status\":\"DISABLED\"}"},
                {"DELETE", "/admin/users/" + userId + "/personal-key", null},
                {"GET", "/admin/usage?user=" + userId, null},
                {"GET", "/metrics", null}};
        for (String[] route : operatorRoutes) {
            HttpResponse<String> r = publicPort.send(route[0], route[1], ADMIN, route[2]);
            assertThat(r.statusCode()).as(route[0] + " " + route[1] + " on the public port").isEqualTo(404);
            assertThat(ApiCalls.json(r).at("/error/message").asText()).isEqualTo("Invalid URL (" + route[0] + " "
                    + route[1].replaceFirst("\\?.*", "") + ")");
            assertThat(ApiCalls.json(r).at("/error/type").asText()).isEqualTo("invalid_request_error");
        }
        assertThat(ApiCalls.json(api.send("GET", "/admin/users/" + userId, ADMIN, null)).get("status").asText())
                .as("nothing above reached the admin API").isEqualTo("ACTIVE");

        // The admin listener serves them.
        assertThat(api.send("GET", "/admin/users/" + userId, ADMIN, null).statusCode()).isEqualTo(200);
        assertThat(api.send("GET", "/admin/usage?user=" + userId, ADMIN, null).statusCode()).isEqualTo(200);
        HttpResponse<String> metrics = api.send("GET", "/metrics", null, null);
        assertThat(metrics.statusCode()).isEqualTo(200);
        assertThat(metrics.body()).contains("edge_spool_pending_events");
        assertThat(api.send("GET", "/health/ready", null, null).statusCode()).isEqualTo(200);
        // ... and not the public routes.
        assertThat(api.send("POST", "/v1/metering/reservations", ADMIN, "{}").statusCode()).isEqualTo(404);
    }

    @Test
    void withoutTheAdminToken_everyRouteIs401_inOpenAisErrorShape() throws Exception {
        EdgeTestBed.User someone = bed.newUser(1_000_000_000L);
        for (String token : new String[] {null, "wrong", ADMIN + "x", someone.key()}) {
            HttpResponse<String> r = api.send("POST", "/admin/users", token, "{\"user_id\":\"x\",\"tenant_id\":\"t\",\"plan_id\":\"p\"}");
            assertThat(r.statusCode()).isEqualTo(401);
            assertThat(ApiCalls.json(r).at("/error/code").asText()).isEqualTo("invalid_api_key");
            assertThat(api.send("GET", "/admin/users/" + someone.userId() + "/keys", token, null).statusCode()).isEqualTo(401);
        }
    }

    @Test
    void plansAndUsers_creditIsExact_andEveryCreditChangeIsPublishedToUserLimits() throws Exception {
        String planId = newPlan("12.50");
        String userId = newUser(planId);
        JsonNode user = ApiCalls.json(api.send("GET", "/admin/users/" + userId, ADMIN, null));
        assertThat(user.at("/effective/monthly_credit_nano_usd").asLong()).isEqualTo(12_500_000_000L);
        assertThat(user.at("/effective/monthly_credit_usd").asText()).isEqualTo("12.500000000");
        await("user limit after creating the user").atMost(Duration.ofSeconds(20))
                .until(() -> limitsOf(userId).size() == 1);
        assertThat(limitsOf(userId).getFirst().getMonthlyCreditNanoUsd()).isEqualTo(12_500_000_000L);

        HttpResponse<String> patched = api.send("PATCH", "/admin/users/" + userId, ADMIN,
                "{\"monthly_credit_override_nano_usd\":20000000001,\"tokens_per_minute_override\":5000}");
        assertThat(patched.statusCode()).as(patched.body()).isEqualTo(200);
        assertThat(ApiCalls.json(patched).at("/effective/monthly_credit_nano_usd").asLong()).isEqualTo(20_000_000_001L);
        assertThat(ApiCalls.json(patched).at("/effective/tokens_per_minute").asLong()).isEqualTo(5000);
        await("user limit after the override").atMost(Duration.ofSeconds(20)).until(() -> limitsOf(userId).size() == 2);
        assertThat(limitsOf(userId).get(1).getMonthlyCreditNanoUsd()).isEqualTo(20_000_000_001L);

        // A plan change reaches users without an override only; clearing the override falls back to the plan.
        assertThat(api.send("PATCH", "/admin/users/" + userId, ADMIN, "{\"monthly_credit_override_usd\":null}").statusCode()).isEqualTo(200);
        assertThat(api.send("PUT", "/admin/plans/" + planId, ADMIN, "{\"monthly_credit_usd\":\"30\"}").statusCode()).isEqualTo(200);
        await("user limit after the plan change").atMost(Duration.ofSeconds(20))
                .until(() -> limitsOf(userId).getLast().getMonthlyCreditNanoUsd() == 30_000_000_000L);

        // The plan's response cache (issue 19): on with a TTL and a hit price, then off again with a null TTL.
        HttpResponse<String> cached = api.send("PUT", "/admin/plans/" + planId, ADMIN,
                "{\"response_cache_ttl_seconds\":600,\"cache_hit_price_percent\":25,\"response_cache_any_request\":true}");
        assertThat(cached.statusCode()).as(cached.body()).isEqualTo(200);
        assertThat(ApiCalls.json(cached).get("response_cache_ttl_seconds").asInt()).isEqualTo(600);
        assertThat(ApiCalls.json(cached).get("cache_hit_price_percent").asInt()).isEqualTo(25);
        assertThat(ApiCalls.json(cached).get("response_cache_any_request").asBoolean()).isTrue();
        JsonNode off = ApiCalls.json(api.send("PUT", "/admin/plans/" + planId, ADMIN, "{\"response_cache_ttl_seconds\":null}"));
        assertThat(off.get("response_cache_ttl_seconds").isNull()).isTrue();
        assertThat(off.get("cache_hit_price_percent").asInt()).as("kept").isEqualTo(25);

        // Money never as floating point, never more than nine decimals.
        HttpResponse<String> floaty = api.send("PUT", "/admin/plans/" + planId, ADMIN, "{\"monthly_credit_usd\":12.5}");
        assertThat(floaty.statusCode()).isEqualTo(400);
        assertThat(api.send("PUT", "/admin/plans/" + planId, ADMIN, "{\"monthly_credit_usd\":\"0.0000000001\"}").statusCode()).isEqualTo(400);

        HttpResponse<String> disabled = api.send("PATCH", "/admin/users/" + userId, ADMIN, "{\"status\":\"DISABLED\"}");
        assertThat(ApiCalls.json(disabled).get("status").asText()).isEqualTo("DISABLED");
        assertThat(ApiCalls.json(api.send("PATCH", "/admin/users/" + userId, ADMIN, "{\"status\":\"ACTIVE\"}")).get("status").asText())
                .isEqualTo("ACTIVE");
        assertThat(api.send("POST", "/admin/users", ADMIN,
                "{\"user_id\":\"" + userId + "\",\"tenant_id\":\"t-1\",\"plan_id\":\"" + planId + "\"}").statusCode()).isEqualTo(409);
    }

    @Test
    void issuedKey_isShownOnce_works_isListedByPrefixOnly_andIs401AfterRevocation() throws Exception {
        String userId = newUser(newPlan("5"));
        HttpResponse<String> issued = api.send("POST", "/admin/users/" + userId + "/keys", ADMIN, null);
        assertThat(issued.statusCode()).isEqualTo(201);
        String key = ApiCalls.json(issued).get("key").asText();
        String apiKeyId = ApiCalls.json(issued).get("api_key_id").asText();
        assertThat(key).startsWith("tm_");

        HttpResponse<String> call = bed.post("/v1/chat/completions", key, EdgeTestBed.chat("gpt-4o-mini", "hello"));
        assertThat(call.statusCode()).as(call.body()).isEqualTo(200);

        HttpResponse<String> list = api.send("GET", "/admin/users/" + userId + "/keys", ADMIN, null);
        assertThat(list.statusCode()).isEqualTo(200);
        assertThat(list.body()).doesNotContain(key).doesNotContain(key.substring(key.lastIndexOf('_') + 1));
        assertThat(ApiCalls.json(list).at("/data/0/api_key_id").asText()).isEqualTo(apiKeyId);
        assertThat(ApiCalls.json(list).at("/data/0/prefix").asText()).isEqualTo(key.substring(0, 15) + "_…");

        HttpResponse<String> revoked = api.send("DELETE", "/admin/users/" + userId + "/keys/" + apiKeyId, ADMIN, null);
        assertThat(revoked.statusCode()).isEqualTo(200);
        // API_KEY_CACHE_TTL is 30 s here: the revoking edge forgets its cache at once.
        HttpResponse<String> after = bed.post("/v1/chat/completions", key, EdgeTestBed.chat("gpt-4o-mini", "again"));
        assertThat(after.statusCode()).isEqualTo(401);
        assertThat(ApiCalls.json(after).at("/error/code").asText()).isEqualTo("invalid_api_key");
        assertThat(ApiCalls.json(api.send("GET", "/admin/users/" + userId + "/keys", ADMIN, null)).at("/data/0/revoked_at").isNull())
                .isFalse();
    }

    @Test
    void personalKey_isSealed_neverReturned_onlyLast4() throws Exception {
        String userId = newUser(newPlan("5"));
        String openAiKey = "sk-proj-" + UUID.randomUUID().toString().replace("-", "") + "WXYZ";
        HttpResponse<String> put = api.send("PUT", "/admin/users/" + userId + "/personal-key", ADMIN, "{\"key\":\"" + openAiKey + "\"}");
        assertThat(put.statusCode()).as(put.body()).isEqualTo(200);
        assertThat(put.body()).doesNotContain(openAiKey).doesNotContain(openAiKey.substring(8, 30));
        assertThat(ApiCalls.json(put).get("last4").asText()).isEqualTo("WXYZ");
        HttpResponse<String> get = api.send("GET", "/admin/users/" + userId + "/personal-key", ADMIN, null);
        assertThat(get.body()).doesNotContain(openAiKey).contains("WXYZ");

        var row = bed.db.selectFrom(PERSONAL_PROVIDER_KEY).where(PERSONAL_PROVIDER_KEY.USER_ID.eq(userId)).fetchOne();
        assertThat(new String(row.getKeyCiphertext(), StandardCharsets.ISO_8859_1)).doesNotContain(openAiKey.substring(8, 20));
        PersonalKeyCipher cipher = new PersonalKeyCipher("k1", MASTER_KEY);
        assertThat(cipher.open(userId, "openai", new PersonalKeyCipher.Sealed(row.getKeyCiphertext(), row.getKeyNonce(), row.getMasterKeyId())))
                .isEqualTo(openAiKey);

        assertThat(api.send("DELETE", "/admin/users/" + userId + "/personal-key", ADMIN, null).statusCode()).isEqualTo(204);
        assertThat(api.send("GET", "/admin/users/" + userId + "/personal-key", ADMIN, null).statusCode()).isEqualTo(404);
    }

    @Test
    void modelPrices_areAppendOnly_effectiveDated_andReachThePriceBook() throws Exception {
        String model = "test-model-" + UUID.randomUUID().toString().substring(0, 6);
        Instant from = Instant.now().plusSeconds(2).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        String body = "{\"model\":\"" + model + "\",\"effective_from\":\"" + from + "\",\"input_nano_usd_per_token\":100,"
                + "\"output_nano_usd_per_token\":400}";
        HttpResponse<String> added = api.send("POST", "/admin/model-prices", ADMIN, body);
        assertThat(added.statusCode()).as(added.body()).isEqualTo(201);
        assertThat(api.send("POST", "/admin/model-prices", ADMIN, body).statusCode()).as("same row twice").isEqualTo(409);
        String past = body.replace(from.toString(), "2024-01-01T00:00:00Z");
        assertThat(api.send("POST", "/admin/model-prices", ADMIN, past).statusCode()).as("re-pricing the past").isEqualTo(400);
        assertThat(bed.app.priceBook().priceAt(model, from.plusSeconds(1))).isPresent()
                .get().satisfies(p -> assertThat(p.inputNanoUsdPerToken()).isEqualTo(100));
        assertThat(bed.app.priceBook().priceAt(model, from.minusSeconds(1))).isEmpty();
    }
}
