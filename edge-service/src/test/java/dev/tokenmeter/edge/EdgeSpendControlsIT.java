package dev.tokenmeter.edge;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 17 (ADR 0077): a service key's expiry (401 api_key_expired at its instant), and model allow-lists per plan and per service key, set and cleared through the admin API
 * and applied at once on this edge (the key cache's TTL is 30 s here, so only the admin API's invalidation can make
 * the changes visible in time). A model outside either list is refused 403 {@code model_not_allowed} with one
 * REJECTED event, on the proxy and on the metering API; a list entry admits its dated snapshots (aliases).
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EdgeSpendControlsIT {

    private static final String ADMIN = "admin-token-for-allow-lists-0123456789";

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls api;
    private ApiCalls admin;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        String prefix = Names.unique("allow") + ".";
        engines.kafka().createCompactedTopic(prefix + "user-limits", 1);
        bed = new EdgeTestBed(engines, openAi, Map.of("ADMIN_TOKEN", ADMIN, "TOPIC_PREFIX", prefix, "API_KEY_CACHE_TTL", "30s"));
        api = new ApiCalls(bed.baseUrl());
        admin = new ApiCalls(bed.adminUrl());
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private HttpResponse<String> setPlanModels(EdgeTestBed.User u, String json) throws Exception {
        return admin.send("PUT", "/admin/plans/plan-" + u.userId(), ADMIN, "{\"allowed_models\":" + json + "}");
    }

    private HttpResponse<String> setKeyModels(EdgeTestBed.User u, String json) throws Exception {
        return admin.send("PATCH", "/admin/users/" + u.userId() + "/keys/" + u.apiKeyId(), ADMIN, "{\"allowed_models\":" + json + "}");
    }

    private static void assertNotAllowed(HttpResponse<String> r) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(403);
        JsonNode error = ApiCalls.json(r).get("error");
        assertThat(error.get("code").asText()).isEqualTo("model_not_allowed");
        assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
        assertThat(error.get("param").asText()).isEqualTo("model");
        assertThat(r.headers().firstValue("x-should-retry")).contains("false");
        assertThat(r.headers().firstValue("x-tokenmeter-event-id")).as("a refused call has its REJECTED event").isPresent();
    }

    private HttpResponse<String> chat(EdgeTestBed.User u, String model) throws Exception {
        return bed.post("/v1/chat/completions", u.key(), EdgeTestBed.chat(model, "hi"));
    }

    @Test
    void planList_admitsItsModelsAndTheirSnapshots_refusesOthersWithARejectedEvent() throws Exception {
        EdgeTestBed.User u = bed.newUser(1_000_000_000L);
        HttpResponse<String> set = setPlanModels(u, "[\"gpt-4o-mini\"]");
        assertThat(set.statusCode()).as(set.body()).isEqualTo(200);
        assertThat(ApiCalls.json(set).get("allowed_models").toString()).isEqualTo("[\"gpt-4o-mini\"]");
        int upstreamBefore = openAi.requestCount();

        HttpResponse<String> refused = chat(u, "gpt-4o");
        assertNotAllowed(refused);
        assertThat(openAi.requestCount()).as("nothing went upstream").isEqualTo(upstreamBefore);
        assertThat(chat(u, "gpt-4o-mini").statusCode()).isEqualTo(200);
        assertThat(chat(u, "gpt-4o-mini-2024-07-18").statusCode()).as("a dated snapshot of a listed model").isEqualTo(200);

        List<UsageEvent> events = bed.awaitEvents(u.userId(), 3, Duration.ofSeconds(20));
        UsageEvent rejected = events.stream().filter(e -> e.getEventId().equals(refused.headers().firstValue("x-tokenmeter-event-id").orElseThrow()))
                .findFirst().orElseThrow();
        assertThat(rejected.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(rejected.getHttpStatus()).isEqualTo(403);
        assertThat(rejected.getCostNanoUsd()).isZero();
        assertThat(rejected.getAttributes()).containsEntry("reject_reason", "model_not_allowed");
        assertThat(events.stream().filter(e -> e.getOutcome() == Outcome.SUCCEEDED).count()).isEqualTo(2);
        assertThat(bed.reservedNanoUsd(u.userId())).as("nothing reserved for the refused call").isZero();

        // Cleared: every model again.
        assertThat(setPlanModels(u, "null").statusCode()).isEqualTo(200);
        assertThat(chat(u, "gpt-4o").statusCode()).isEqualTo(200);
    }

    @Test
    void keyAndPlanLists_bothApply_andAListedSnapshotDoesNotAdmitTheMovingName() throws Exception {
        EdgeTestBed.User u = bed.newUser(1_000_000_000L);
        assertThat(setPlanModels(u, "[\"gpt-4o-mini\",\"gpt-4o\"]").statusCode()).isEqualTo(200);
        HttpResponse<String> key = setKeyModels(u, "[\"gpt-4o-2024-08-06\"]");
        assertThat(key.statusCode()).as(key.body()).isEqualTo(200);
        assertThat(ApiCalls.json(key).get("allowed_models").toString()).isEqualTo("[\"gpt-4o-2024-08-06\"]");

        JsonNode shown = ApiCalls.json(api.send("GET", "/v1/usage", u.key(), null)).get("limits");
        assertThat(shown.get("plan_allowed_models").toString()).as("visible to the key's holder").isEqualTo("[\"gpt-4o\",\"gpt-4o-mini\"]");
        assertThat(shown.get("key_allowed_models").toString()).isEqualTo("[\"gpt-4o-2024-08-06\"]");

        assertNotAllowed(chat(u, "gpt-4o-mini")); // on the plan's list, not on the key's
        assertNotAllowed(chat(u, "gpt-4o"));      // the key lists one snapshot only
        assertThat(chat(u, "gpt-4o-2024-08-06").statusCode()).as("on the key's list, and through its alias on the plan's").isEqualTo(200);

        HttpResponse<String> listed = admin.send("GET", "/admin/users/" + u.userId() + "/keys", ADMIN, null);
        assertThat(ApiCalls.json(listed).get("data").get(0).get("allowed_models").toString()).isEqualTo("[\"gpt-4o-2024-08-06\"]");

        assertThat(setKeyModels(u, "[]").statusCode()).as("[] clears").isEqualTo(200);
        assertThat(chat(u, "gpt-4o").statusCode()).isEqualTo(200);
        assertThat(chat(u, "gpt-4.1").statusCode()).as("the plan's list still applies").isEqualTo(403);
    }

    @Test
    void meteringApiReservation_ofAModelNotAllowed_is403WithARejectedEvent() throws Exception {
        EdgeTestBed.User u = bed.newUser(1_000_000_000L);
        assertThat(setKeyModels(u, "[\"gpt-4o-mini\"]").statusCode()).isEqualTo(200);
        HttpResponse<String> refused = api.send("POST", "/v1/metering/reservations", u.key(),
                "{\"model\":\"gpt-4o\",\"estimated_prompt_tokens\":10,\"max_completion_tokens\":10}");
        assertNotAllowed(refused);
        HttpResponse<String> admitted = api.send("POST", "/v1/metering/reservations", u.key(),
                "{\"model\":\"gpt-4o-mini-2024-07-18\",\"estimated_prompt_tokens\":10,\"max_completion_tokens\":10}");
        assertThat(admitted.statusCode()).as(admitted.body()).isEqualTo(201);
        UsageEvent rejected = bed.awaitEvents(u.userId(), 1, Duration.ofSeconds(20)).getFirst();
        assertThat(rejected.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(rejected.getAttributes()).containsEntry("reject_reason", "model_not_allowed");
    }

    @Test
    void listsOutOfBounds_areRefused400_andNothingIsStored() throws Exception {
        EdgeTestBed.User u = bed.newUser(1_000_000_000L);
        String tooMany = IntStream.rangeClosed(1, 101).mapToObj(i -> "\"m" + i + "\"").collect(Collectors.joining(",", "[", "]"));
        String hundred = IntStream.rangeClosed(1, 100).mapToObj(i -> "\"m" + i + "\"").collect(Collectors.joining(",", "[", "]"));
        for (String bad : List.of(tooMany, "[\"" + "a".repeat(101) + "\"]", "[\"gpt 4o\"]", "[\"\"]", "[1]", "\"gpt-4o\"")) {
            HttpResponse<String> r = setKeyModels(u, bad);
            assertThat(r.statusCode()).as(bad + " -> " + r.body()).isEqualTo(400);
            assertThat(ApiCalls.json(r).get("error").get("param").asText()).isEqualTo("allowed_models");
            assertThat(setPlanModels(u, bad).statusCode()).isEqualTo(400);
        }
        assertThat(chat(u, "gpt-4o").statusCode()).as("nothing was stored").isEqualTo(200);
        assertThat(setKeyModels(u, hundred).statusCode()).as("100 models are fine").isEqualTo(200);
        assertThat(setKeyModels(u, "[\"" + "a".repeat(100) + "\"]").statusCode()).as("100 chars are fine").isEqualTo(200);
        assertNotAllowed(chat(u, "gpt-4o"));
        assertThat(admin.send("PATCH", "/admin/users/" + u.userId() + "/keys/no-such-key", ADMIN, "{\"allowed_models\":null}")
                .statusCode()).isEqualTo(404);
    }

    private static void assertExpired(HttpResponse<String> r) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(401);
        JsonNode error = ApiCalls.json(r).get("error");
        assertThat(error.get("code").asText()).isEqualTo("api_key_expired");
        assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
        assertThat(r.headers().firstValue("x-tokenmeter-event-id")).as("no event for an expired key").isEmpty();
    }

    @Test
    void keyExpiry_takesEffectAtItsInstant_notAfterTheKeyCacheTtl_onEveryRoute() throws Exception {
        EdgeTestBed.User u = bed.newUser(1_000_000_000L);
        EdgeTestBed.User other = bed.issueKey(u.userId(), u.tenantId());
        java.time.Instant at = java.time.Instant.now().plusSeconds(3).truncatedTo(java.time.temporal.ChronoUnit.MILLIS);
        HttpResponse<String> set = admin.send("PATCH", "/admin/users/" + u.userId() + "/keys/" + u.apiKeyId(), ADMIN,
                "{\"expires_at\":\"" + at + "\"}");
        assertThat(set.statusCode()).as(set.body()).isEqualTo(200);
        assertThat(ApiCalls.json(set).get("expires_at").asText()).isEqualTo(at.toString());
        // Cached now (the TTL is 30 s): the expiry must still apply at its instant.
        assertThat(chat(u, "gpt-4o-mini").statusCode()).as("before its expiry").isEqualTo(200);
        org.awaitility.Awaitility.await("the key refused once its expires_at has passed").atMost(Duration.ofSeconds(15))
                .pollInterval(Duration.ofMillis(200)).until(() -> chat(u, "gpt-4o-mini").statusCode() == 401);
        assertThat(java.time.Instant.now()).as("not before its instant").isAfterOrEqualTo(at);
        assertExpired(chat(u, "gpt-4o-mini"));
        assertExpired(api.send("POST", "/v1/metering/reservations", u.key(),
                "{\"model\":\"gpt-4o-mini\",\"estimated_prompt_tokens\":10,\"max_completion_tokens\":10}"));
        assertExpired(api.send("GET", "/v1/usage", u.key(), null));
        assertThat(chat(other, "gpt-4o-mini").statusCode()).as("the user's other key is unaffected").isEqualTo(200);
        List<UsageEvent> events = bed.awaitEvents(u.userId(), 2, Duration.ofSeconds(20));
        assertThat(events).as("the admitted calls only: an expired key's calls have no event").allMatch(e -> e.getOutcome() == Outcome.SUCCEEDED);

        assertThat(admin.send("PATCH", "/admin/users/" + u.userId() + "/keys/" + u.apiKeyId(), ADMIN, "{\"expires_at\":null}")
                .statusCode()).isEqualTo(200);
        assertThat(chat(u, "gpt-4o-mini").statusCode()).as("cleared: usable again").isEqualTo(200);
        for (String bad : List.of("\"tomorrow\"", "12345", "\"2026-13-01T00:00:00Z\"")) {
            HttpResponse<String> r = admin.send("PATCH", "/admin/users/" + u.userId() + "/keys/" + u.apiKeyId(), ADMIN,
                    "{\"expires_at\":" + bad + "}");
            assertThat(r.statusCode()).as(bad).isEqualTo(400);
            assertThat(ApiCalls.json(r).get("error").get("param").asText()).isEqualTo("expires_at");
        }
    }

    private HttpResponse<String> setKeyBudget(EdgeTestBed.User u, String json) throws Exception {
        return admin.send("PATCH", "/admin/users/" + u.userId() + "/keys/" + u.apiKeyId(), ADMIN, "{" + json + "}");
    }

    /** Issue 17, ADR 0081: a key's own monthly budget, on top of its user's credit. */
    @Test
    void keyBudget_refusesPastIt429KeyBudgetExceededWithARejectedEvent_perKey_andCountsSettledSpend() throws Exception {
        EdgeTestBed.User u = bed.newUser(1_000_000_000_000L);
        EdgeTestBed.User other = bed.issueKey(u.userId(), u.tenantId());
        HttpResponse<String> set = setKeyBudget(u, "\"monthly_budget_nano_usd\":1");
        assertThat(set.statusCode()).as(set.body()).isEqualTo(200);
        assertThat(ApiCalls.json(set).get("monthly_budget_nano_usd").asLong()).isEqualTo(1);
        int upstreamBefore = openAi.requestCount();

        HttpResponse<String> refused = chat(u, "gpt-4o-mini");
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
        JsonNode error = ApiCalls.json(refused).get("error");
        assertThat(error.get("code").asText()).isEqualTo("key_budget_exceeded");
        assertThat(error.get("type").asText()).isEqualTo("insufficient_quota");
        assertThat(openAi.requestCount()).as("nothing went upstream").isEqualTo(upstreamBefore);
        assertThat(chat(other, "gpt-4o-mini").statusCode()).as("the user's other key has no budget").isEqualTo(200);
        String refusedId = refused.headers().firstValue("x-tokenmeter-event-id").orElseThrow();
        UsageEvent rejected = bed.awaitEvents(u.userId(), 2, Duration.ofSeconds(20)).stream()
                .filter(e -> e.getEventId().equals(refusedId)).findFirst().orElseThrow();
        assertThat(rejected.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(rejected.getHttpStatus()).isEqualTo(429);
        assertThat(rejected.getCostNanoUsd()).isZero();
        assertThat(rejected.getAttributes()).containsEntry("reject_reason", "KEY_BUDGET_EXCEEDED");

        HttpResponse<String> raised = setKeyBudget(u, "\"monthly_budget_usd\":\"1.50\"");
        assertThat(ApiCalls.json(raised).get("monthly_budget_nano_usd").asLong()).isEqualTo(1_500_000_000L);
        assertThat(ApiCalls.json(raised).get("monthly_budget_usd").asText()).isEqualTo("1.500000000");
        HttpResponse<String> paid = chat(u, "gpt-4o-mini");
        assertThat(paid.statusCode()).as(paid.body()).isEqualTo(200);
        String paidId = paid.headers().firstValue("x-tokenmeter-event-id").orElseThrow();
        UsageEvent billed = bed.awaitEvents(u.userId(), 3, Duration.ofSeconds(20)).stream()
                .filter(e -> e.getEventId().equals(paidId)).findFirst().orElseThrow();
        assertThat(billed.getCostNanoUsd()).isPositive();
        // Visible to the key's holder (step 3 of issue 17): the budget and what the key has spent (the settle is
        // asynchronous to the response: until then the estimate is counted).
        org.awaitility.Awaitility.await("GET /v1/usage shows the key's budget and its spend").atMost(Duration.ofSeconds(10))
                .until(() -> ApiCalls.json(api.send("GET", "/v1/usage", u.key(), null)).get("limits").get("key_used_nano_usd")
                        .asLong() == billed.getCostNanoUsd());
        JsonNode shown = ApiCalls.json(api.send("GET", "/v1/usage", u.key(), null)).get("limits");
        assertThat(shown.get("key_monthly_budget_nano_usd").asLong()).isEqualTo(1_500_000_000L);
        assertThat(shown.get("key_monthly_budget_usd").asText()).isEqualTo("1.500000000");
        JsonNode otherShown = ApiCalls.json(api.send("GET", "/v1/usage", other.key(), null)).get("limits");
        assertThat(otherShown.get("key_monthly_budget_nano_usd").isNull()).as("the other key has none").isTrue();
        // The key has spent exactly the call's cost: a budget of that much leaves nothing for the next call's estimate.
        assertThat(setKeyBudget(u, "\"monthly_budget_nano_usd\":" + billed.getCostNanoUsd()).statusCode()).isEqualTo(200);
        org.awaitility.Awaitility.await("the settled cost counted against the key's budget").atMost(Duration.ofSeconds(10))
                .until(() -> chat(u, "gpt-4o-mini").statusCode() == 429);

        for (String bad : List.of("\"monthly_budget_nano_usd\":-1", "\"monthly_budget_nano_usd\":1000000000000001",
                "\"monthly_budget_usd\":\"abc\"", "\"monthly_budget_usd\":1.5", "\"monthly_budget_nano_usd\":\"5\"")) {
            HttpResponse<String> r = setKeyBudget(u, bad);
            assertThat(r.statusCode()).as(bad + " -> " + r.body()).isEqualTo(400);
            assertThat(ApiCalls.json(r).get("error").get("param").asText()).startsWith("monthly_budget");
        }
        HttpResponse<String> cleared = setKeyBudget(u, "\"monthly_budget_nano_usd\":null");
        assertThat(ApiCalls.json(cleared).get("monthly_budget_nano_usd").isNull()).isTrue();
        assertThat(chat(u, "gpt-4o-mini").statusCode()).as("cleared: no budget of its own").isEqualTo(200);
    }

    private HttpResponse<String> setTenantBudget(String tenantId, String json) throws Exception {
        return admin.send("PUT", "/admin/tenants/" + tenantId + "/budget", ADMIN, "{" + json + "}");
    }

    /** Issue 17, ADR 0081: a tenant's monthly budget, shared by its users, on top of each user's credit. */
    @Test
    void tenantBudget_sharedByItsUsers_refusesPastIt429TenantBudgetExceededWithARejectedEvent_andShowsItsSpend() throws Exception {
        String tenant = Names.unique("tenant-budget");
        EdgeTestBed.User a = bed.newUser(1_000_000_000_000L, 10_000, tenant);
        EdgeTestBed.User b = bed.newUser(1_000_000_000_000L, 10_000, tenant);
        HttpResponse<String> set = setTenantBudget(tenant, "\"monthly_budget_nano_usd\":1");
        assertThat(set.statusCode()).as(set.body()).isEqualTo(200);
        assertThat(ApiCalls.json(set).get("monthly_budget_nano_usd").asLong()).isEqualTo(1);
        assertThat(ApiCalls.json(set).get("monthly_budget_usd").asText()).isEqualTo("0.000000001");
        int upstreamBefore = openAi.requestCount();

        HttpResponse<String> refused = chat(a, "gpt-4o-mini");
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
        JsonNode error = ApiCalls.json(refused).get("error");
        assertThat(error.get("code").asText()).isEqualTo("tenant_budget_exceeded");
        assertThat(error.get("type").asText()).isEqualTo("insufficient_quota");
        assertThat(refused.headers().firstValue("x-should-retry")).contains("false");
        assertThat(chat(b, "gpt-4o-mini").statusCode()).as("the tenant's other user shares the budget").isEqualTo(429);
        assertThat(openAi.requestCount()).as("nothing went upstream").isEqualTo(upstreamBefore);
        String refusedId = refused.headers().firstValue("x-tokenmeter-event-id").orElseThrow();
        UsageEvent rejected = bed.awaitEvents(a.userId(), 1, Duration.ofSeconds(20)).stream()
                .filter(e -> e.getEventId().equals(refusedId)).findFirst().orElseThrow();
        assertThat(rejected.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(rejected.getHttpStatus()).isEqualTo(429);
        assertThat(rejected.getCostNanoUsd()).isZero();
        assertThat(rejected.getAttributes()).containsEntry("reject_reason", "TENANT_BUDGET_EXCEEDED");
        assertThat(bed.reservedNanoUsd(a.userId())).as("nothing reserved for the refused call").isZero();

        HttpResponse<String> raised = setTenantBudget(tenant, "\"monthly_budget_usd\":\"1.50\"");
        assertThat(raised.statusCode()).as(raised.body()).isEqualTo(200);
        assertThat(ApiCalls.json(raised).get("monthly_budget_nano_usd").asLong()).isEqualTo(1_500_000_000L);
        HttpResponse<String> paid = chat(a, "gpt-4o-mini");
        assertThat(paid.statusCode()).as(paid.body()).isEqualTo(200);
        String paidId = paid.headers().firstValue("x-tokenmeter-event-id").orElseThrow();
        UsageEvent billed = bed.awaitEvents(a.userId(), 2, Duration.ofSeconds(20)).stream()
                .filter(e -> e.getEventId().equals(paidId)).findFirst().orElseThrow();
        assertThat(billed.getCostNanoUsd()).isPositive();
        // Visible to every user of the tenant: the budget and what the tenant has spent (settled after the response).
        org.awaitility.Awaitility.await("GET /v1/usage of b shows the tenant's budget and a's spend").atMost(Duration.ofSeconds(10))
                .until(() -> ApiCalls.json(api.send("GET", "/v1/usage", b.key(), null)).get("limits").get("tenant_used_nano_usd")
                        .asLong() == billed.getCostNanoUsd());
        JsonNode shown = ApiCalls.json(api.send("GET", "/v1/usage", b.key(), null)).get("limits");
        assertThat(shown.get("tenant_monthly_budget_nano_usd").asLong()).isEqualTo(1_500_000_000L);
        assertThat(shown.get("tenant_monthly_budget_usd").asText()).isEqualTo("1.500000000");
        assertThat(shown.get("tenant_used_usd").asText()).isEqualTo(dev.tokenmeter.events.money.Money.formatUsd(billed.getCostNanoUsd()));
        HttpResponse<String> got = admin.send("GET", "/admin/tenants/" + tenant + "/budget", ADMIN, null);
        assertThat(ApiCalls.json(got).get("monthly_budget_usd").asText()).isEqualTo("1.500000000");
        // The tenant has spent exactly a's cost: a budget of that much leaves nothing for b's next estimate.
        assertThat(setTenantBudget(tenant, "\"monthly_budget_nano_usd\":" + billed.getCostNanoUsd()).statusCode()).isEqualTo(200);
        HttpResponse<String> full = chat(b, "gpt-4o-mini");
        assertThat(full.statusCode()).as(full.body()).isEqualTo(429);
        assertThat(ApiCalls.json(full).get("error").get("code").asText()).isEqualTo("tenant_budget_exceeded");

        for (String bad : List.of("\"monthly_budget_nano_usd\":-1", "\"monthly_budget_nano_usd\":1000000000000001",
                "\"monthly_budget_usd\":\"abc\"", "\"monthly_budget_usd\":1.5", "\"monthly_budget_nano_usd\":\"5\"",
                "\"monthly_budget_nano_usd\":null")) {
            HttpResponse<String> r = setTenantBudget(tenant, bad);
            assertThat(r.statusCode()).as(bad + " -> " + r.body()).isEqualTo(400);
            assertThat(ApiCalls.json(r).get("error").get("param").asText()).startsWith("monthly_budget");
        }
        assertThat(ApiCalls.json(admin.send("GET", "/admin/tenants/" + tenant + "/budget", ADMIN, null))
                .get("monthly_budget_nano_usd").asLong()).as("nothing changed by the refused bodies").isEqualTo(billed.getCostNanoUsd());
        assertThat(admin.send("DELETE", "/admin/tenants/" + tenant + "/budget", ADMIN, null).statusCode()).isEqualTo(204);
        assertThat(admin.send("GET", "/admin/tenants/" + tenant + "/budget", ADMIN, null).statusCode()).isEqualTo(404);
        assertThat(chat(b, "gpt-4o-mini").statusCode()).as("removed: no tenant budget").isEqualTo(200);
        JsonNode none = ApiCalls.json(api.send("GET", "/v1/usage", b.key(), null)).get("limits");
        assertThat(none.get("tenant_monthly_budget_nano_usd").isNull()).isTrue();
        assertThat(none.get("tenant_used_nano_usd").isNull()).isTrue();
    }
}
