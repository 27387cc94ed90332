package dev.tokenmeter.edge.usage;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.LocalDate;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.Map;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 4, usage query: real-time (the Redis quota engine) and billed (usage_total_monthly in Postgres), each user only their own.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class UsageApiIT {

    private static final String ADMIN = "admin-" + UUID.randomUUID();

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls api;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of("ADMIN_TOKEN", ADMIN));
        api = new ApiCalls(bed.baseUrl());
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private void billedRow(String userId, YearMonth month, String model, long costNanoUsd) {
        bed.db.insertInto(USAGE_TOTAL_MONTHLY).set(USAGE_TOTAL_MONTHLY.USER_ID, userId).set(USAGE_TOTAL_MONTHLY.MODEL, model)
                .set(USAGE_TOTAL_MONTHLY.KEY_SOURCE, "SERVICE_CREDIT")
                .set(USAGE_TOTAL_MONTHLY.BILLING_MONTH, LocalDate.of(month.getYear(), month.getMonth(), 1))
                .set(USAGE_TOTAL_MONTHLY.TENANT_ID, "t").set(USAGE_TOTAL_MONTHLY.EVENT_COUNT, 3L)
                .set(USAGE_TOTAL_MONTHLY.SUCCEEDED_COUNT, 3L).set(USAGE_TOTAL_MONTHLY.FAILED_COUNT, 0L)
                .set(USAGE_TOTAL_MONTHLY.CANCELLED_COUNT, 0L).set(USAGE_TOTAL_MONTHLY.REJECTED_COUNT, 0L)
                .set(USAGE_TOTAL_MONTHLY.PROMPT_TOKENS, 30L).set(USAGE_TOTAL_MONTHLY.CACHED_PROMPT_TOKENS, 0L)
                .set(USAGE_TOTAL_MONTHLY.COMPLETION_TOKENS, 9L).set(USAGE_TOTAL_MONTHLY.REASONING_TOKENS, 0L)
                .set(USAGE_TOTAL_MONTHLY.COST_NANO_USD, costNanoUsd).set(USAGE_TOTAL_MONTHLY.REVISION, 1L)
                .execute();
    }

    @Test
    void aUserSeesOnlyTheirOwnUsage_realTimeAndBilled_andTheAdminSeesAnyone() throws Exception {
        EdgeTestBed.User a = bed.newUser(2_000_000_000L);
        EdgeTestBed.User b = bed.newUser(3_000_000_000L);
        YearMonth month = YearMonth.now(ZoneOffset.UTC);
        billedRow(a.userId(), month, "gpt-4o-mini", 1_234L);
        billedRow(a.userId(), month, "gpt-4o", 10_000L);
        billedRow(b.userId(), month, "gpt-4o-mini", 999_999L);
        HttpResponse<String> call = bed.post("/v1/chat/completions", a.key(), EdgeTestBed.chat("gpt-4o-mini", "hello"));
        assertThat(call.statusCode()).isEqualTo(200);
        // The edge settles after the answer is out: wait for it. Real time = the billed baseline Redis started from
        // (the two rows above) plus this call's exact cost.
        long callCost = bed.awaitEvents(a.userId(), 1, Duration.ofSeconds(30)).get(0).getCostNanoUsd();
        assertThat(callCost).isPositive();
        long settled = 11_234L + callCost;
        await("the call is settled in Redis on top of the billed baseline").atMost(Duration.ofSeconds(30))
                .untilAsserted(() -> assertThat(bed.quota.usedNanoUsd(a.userId())).isEqualTo(settled));

        HttpResponse<String> own = api.send("GET", "/v1/usage?month=" + month, a.key(), null);
        assertThat(own.statusCode()).as(own.body()).isEqualTo(200);
        JsonNode n = ApiCalls.json(own);
        assertThat(n.get("user_id").asText()).isEqualTo(a.userId());
        assertThat(n.at("/realtime/settled_nano_usd").asLong()).isEqualTo(settled);
        assertThat(n.at("/realtime/remaining_nano_usd").asLong()).isEqualTo(2_000_000_000L - settled);
        assertThat(n.at("/billed/total_cost_nano_usd").asLong()).isEqualTo(11_234L);
        assertThat(n.at("/billed/data").size()).isEqualTo(2);
        assertThat(own.body()).doesNotContain(b.userId());

        HttpResponse<String> other = api.send("GET", "/v1/usage?month=" + month + "&user=" + b.userId(), a.key(), null);
        assertThat(other.statusCode()).as("A cannot read B's usage").isEqualTo(403);
        assertThat(other.body()).doesNotContain("999999");

        // The admin usage query is on the admin listener only; the public /v1/usage takes service keys only.
        HttpResponse<String> admin = new ApiCalls(bed.adminUrl()).send("GET", "/admin/usage?month=" + month + "&user=" + b.userId(),
                ADMIN, null);
        assertThat(admin.statusCode()).isEqualTo(200);
        assertThat(ApiCalls.json(admin).at("/billed/total_cost_nano_usd").asLong()).isEqualTo(999_999L);
        assertThat(api.send("GET", "/v1/usage?month=" + month + "&user=" + b.userId(), ADMIN, null).statusCode()).isEqualTo(401);

        assertThat(api.send("GET", "/v1/usage?month=" + month, null, null).statusCode()).isEqualTo(401);
        assertThat(api.send("GET", "/v1/usage?month=" + month, "tm_notakey", null).statusCode()).isEqualTo(401);
        assertThat(api.send("GET", "/v1/usage?month=2026-13", a.key(), null).statusCode()).isEqualTo(400);
        HttpResponse<String> otherMonth = api.send("GET", "/v1/usage?month=" + month.minusMonths(1), a.key(), null);
        assertThat(ApiCalls.json(otherMonth).at("/billed/total_cost_nano_usd").asLong()).isZero();
    }
}
