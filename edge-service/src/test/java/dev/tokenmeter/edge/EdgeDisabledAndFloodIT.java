package dev.tokenmeter.edge;

import com.fasterxml.jackson.databind.JsonNode;
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
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;
import static dev.tokenmeter.db.jooq.Tables.PLAN;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 14, finding 6: a DISABLED account's key is refused with 403 {@code account_disabled} on every route before
 * any other work (no event, nothing in Redis, nothing upstream); bad input counts against the caller's rate limit
 * before an event is published, so a flood of bad requests is cut off with 429 like any other flood; batch ingest
 * is rate limited.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EdgeDisabledAndFloodIT {

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls api;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of());
        api = new ApiCalls(bed.baseUrl());
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    static String batchItem(String eventId, long prompt, long completion) {
        return "{\"event_id\":\"" + eventId + "\",\"occurred_at\":\"" + Instant.now().minusSeconds(60).truncatedTo(ChronoUnit.MILLIS)
                + "\",\"model\":\"gpt-4o-mini\",\"prompt_tokens\":" + prompt + ",\"completion_tokens\":" + completion + "}";
    }

    /** Waits until a batch event of another user is on the topic: every event the edge submitted before it is too. */
    private void barrier() throws Exception {
        EdgeTestBed.User other = bed.newUser(1_000_000_000L);
        HttpResponse<String> r = api.send("POST", "/v1/metering/usage:batch", other.key(),
                "{\"events\":[" + batchItem(UUID.randomUUID().toString(), 1, 1) + "]}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        bed.awaitEvents(other.userId(), 1, Duration.ofSeconds(20));
    }

    private static void assertAccountDisabled(HttpResponse<String> r) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(403);
        JsonNode error = ApiCalls.json(r).get("error");
        assertThat(error.get("code").asText()).isEqualTo("account_disabled");
        assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
        assertThat(r.headers().firstValue("x-tokenmeter-event-id")).as("no event for a disabled account").isEmpty();
    }

    @Test
    void disabledAccount_is403OnEveryRoute_beforeAnyOtherWork() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        bed.db.update(ACCOUNT).set(ACCOUNT.STATUS, "DISABLED").where(ACCOUNT.USER_ID.eq(user.userId())).execute();
        int upstreamBefore = openAi.requestCount();

        assertAccountDisabled(bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "hi")));
        assertAccountDisabled(bed.post("/v1/chat/completions", user.key(), "{not json"));
        assertAccountDisabled(bed.post("/v1/embeddings", user.key(), "{\"model\":\"no-such-model\",\"input\":\"x\"}"));
        assertAccountDisabled(api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini\",\"estimated_prompt_tokens\":10,\"max_completion_tokens\":10}"));
        assertAccountDisabled(api.send("POST", "/v1/metering/reservations/x/commit", user.key(), "{\"prompt_tokens\":1}"));
        assertAccountDisabled(api.send("POST", "/v1/metering/reservations/x/release", user.key(), null));
        assertAccountDisabled(api.send("POST", "/v1/metering/usage:batch", user.key(),
                "{\"events\":[" + batchItem(UUID.randomUUID().toString(), 10, 10) + "]}"));
        assertAccountDisabled(api.send("GET", "/v1/usage", user.key(), null));

        assertThat(openAi.requestCount()).as("nothing went upstream").isEqualTo(upstreamBefore);
        assertThat(bed.quotaRedis.connection().sync().keys("*{u:" + user.userId() + "}*")).as("no reservation, rate-limit or marker key in Redis").isEmpty();
        barrier();
        assertThat(bed.events(user.userId())).as("no event for a disabled account").isEmpty();
    }

    private static void assertRateLimited(HttpResponse<String> r, String type) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(429);
        JsonNode error = ApiCalls.json(r).get("error");
        assertThat(error.get("code").asText()).isEqualTo("rate_limit_exceeded");
        assertThat(error.get("type").asText()).isEqualTo(type);
        assertThat(r.headers().firstValue("retry-after")).as("a 429 says when to come back").isPresent();
        assertThat(r.headers().firstValue("x-tokenmeter-event-id")).as("no event for a request cut off").isEmpty();
    }

    @Test
    void floodOfBadRequests_isCutOffBy429_beforeItsEventsArePublished() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L, 5);
        int badRequests = 0;
        int cutOff = 0;
        for (int i = 0; i < 20; i++) { // bounded: 20 requests against a limit of 5 per minute
            HttpResponse<String> r = i % 2 == 0
                    ? bed.post("/v1/chat/completions", user.key(), "{not json")
                    : bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("no-such-model-" + i, "hi"));
            if (r.statusCode() == 400) {
                badRequests++;
                assertThat(r.headers().firstValue("x-tokenmeter-event-id")).isPresent();
            } else {
                assertRateLimited(r, "requests");
                cutOff++;
            }
        }
        assertThat(badRequests).as("the limit's worth of bad requests is answered 400").isBetween(1, 5);
        assertThat(cutOff).isEqualTo(20 - badRequests);
        // The metering API's bad input counts too: the user is over the limit there as well.
        assertRateLimited(api.send("POST", "/v1/metering/reservations", user.key(), "{\"model\":\"\"}"), "requests");
        barrier();
        assertThat(bed.events(user.userId())).as("one REJECTED event per 400, none for the flood beyond the limit")
                .hasSize(badRequests);
    }

    @Test
    void batchIngest_isRateLimitedByRequestsAndTokens_andNothingOfARefusedBatchIsPublished() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L, 5);
        HttpResponse<String> first = api.send("POST", "/v1/metering/usage:batch", user.key(), "{\"events\":["
                + batchItem(UUID.randomUUID().toString(), 10, 10) + "," + batchItem(UUID.randomUUID().toString(), 10, 10) + ","
                + batchItem(UUID.randomUUID().toString(), 10, 10) + "]}");
        assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
        assertThat(first.headers().firstValue("x-ratelimit-remaining-requests")).contains("2");
        HttpResponse<String> second = api.send("POST", "/v1/metering/usage:batch", user.key(), "{\"events\":["
                + batchItem(UUID.randomUUID().toString(), 10, 10) + "," + batchItem(UUID.randomUUID().toString(), 10, 10) + ","
                + batchItem(UUID.randomUUID().toString(), 10, 10) + "]}");
        assertRateLimited(second, "requests");

        // Tokens: a user with 1,000 tokens per minute; a batch of more empties the bucket, the next one waits.
        EdgeTestBed.User small = bed.newUser(1_000_000_000L);
        bed.db.update(PLAN).set(PLAN.TOKENS_PER_MINUTE, 1_000L).where(PLAN.PLAN_ID.eq("plan-" + small.userId())).execute();
        HttpResponse<String> big = api.send("POST", "/v1/metering/usage:batch", small.key(),
                "{\"events\":[" + batchItem(UUID.randomUUID().toString(), 1_500, 500) + "]}");
        assertThat(big.statusCode()).as(big.body()).isEqualTo(200);
        assertRateLimited(api.send("POST", "/v1/metering/usage:batch", small.key(),
                "{\"events\":[" + batchItem(UUID.randomUUID().toString(), 10, 10) + "]}"), "tokens");

        barrier();
        assertThat(bed.events(user.userId())).as("the first batch only").hasSize(3);
        assertThat(bed.events(small.userId())).as("the first batch only").hasSize(1);
    }
}
