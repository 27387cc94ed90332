package dev.tokenmeter.edge;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.validate.UsageEventBounds;
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
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 14, finding 1: every caller-controlled string that reaches an event has a bound and an alphabet
 * ({@link UsageEventBounds}, ADR 0053). A 1.5 MB {@code model} (from any valid key, even an out-of-credit one), or an
 * oversized {@code endpoint} / {@code upstream_request_id} through the metering API, used to become an event larger
 * than the producer's {@code max.request.size}, which the spool then retried forever in front of every other
 * event. Now each is a 400 in OpenAI's error shape naming the field and its limit, with no event, and the pipeline
 * keeps flowing for everybody else. Token counts and {@code max_tokens}/{@code n} are bounded too: bad input is a
 * 4xx, never a 5xx.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EdgeInputBoundsIT {

    private static final String HUGE = "m".repeat(1_500_000);

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

    /** A 400 in OpenAI's shape naming {@code param}, whose message names the limit; no event id (no event). */
    private static void assertBadRequest(HttpResponse<String> r, String param, String limit) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
        JsonNode error = ApiCalls.json(r).get("error");
        assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
        assertThat(error.get("param").asText()).isEqualTo(param);
        assertThat(error.get("message").asText()).contains(param).contains(limit);
        assertThat(error.get("message").asText().length()).as("the message does not echo the input").isLessThan(400);
        assertThat(r.headers().firstValue("x-tokenmeter-event-id")).as("no event for out-of-bounds input").isEmpty();
    }

    /** A good call by a fresh user arrives on the topic: nothing is stuck in front of it. */
    private void assertPipelineFlows() throws Exception {
        EdgeTestBed.User other = bed.newUser(1_000_000_000L);
        HttpResponse<String> r = bed.post("/v1/chat/completions", other.key(), EdgeTestBed.chat("gpt-4o-mini", "hello"));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        bed.awaitEvents(other.userId(), 1, Duration.ofSeconds(30));
    }

    private static String batchItem(String model, String endpoint, String upstreamRequestId) {
        return "{\"event_id\":\"" + UUID.randomUUID() + "\",\"occurred_at\":\"" + Instant.now().minusSeconds(60).truncatedTo(ChronoUnit.MILLIS)
                + "\",\"model\":" + EdgeTestBed.quote(model) + ",\"endpoint\":" + EdgeTestBed.quote(endpoint)
                + (upstreamRequestId == null ? "" : ",\"upstream_request_id\":" + EdgeTestBed.quote(upstreamRequestId))
                + ",\"prompt_tokens\":10,\"completion_tokens\":5}";
    }

    @Test
    void proxy_hugeModelFromAnOutOfCreditKey_is400WithoutAnEvent_andThePipelineKeepsFlowing() throws Exception {
        EdgeTestBed.User broke = bed.newUser(0);
        HttpResponse<String> r = bed.post("/v1/chat/completions", broke.key(), EdgeTestBed.chat(HUGE, "hi"));
        assertBadRequest(r, "model", "128");
        assertPipelineFlows();
        assertThat(bed.events(broke.userId())).as("no event of the bad call").isEmpty();
    }

    @Test
    void proxy_modelOutsideItsAlphabet_is400() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        int upstreamBefore = openAi.requestCount();
        for (String model : List.of("gpt-4o-mini\n", "gpt 4o", "gpt-4o\u0000", "gpt-4o-mini\"}", "m".repeat(129))) {
            String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":"
                    + ApiCalls.JSON.writeValueAsString(model) + "}";
            assertBadRequest(bed.post("/v1/chat/completions", user.key(), body), "model", "128");
        }
        assertThat(openAi.requestCount()).as("nothing went upstream").isEqualTo(upstreamBefore);
        assertThat(bed.events(user.userId())).as("no event").isEmpty();
    }

    @Test
    void proxy_maxTokensAndNOutOfBounds_are400_not503() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        String base = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"gpt-4o-mini\"";
        assertBadRequest(bed.post("/v1/chat/completions", user.key(), base + ",\"max_tokens\":2e8}"), "max_tokens", "10000000");
        assertBadRequest(bed.post("/v1/chat/completions", user.key(), base + ",\"max_completion_tokens\":200000000}"),
                "max_completion_tokens", "10000000");
        assertBadRequest(bed.post("/v1/chat/completions", user.key(), base + ",\"max_tokens\":-1}"), "max_tokens", "10000000");
        assertBadRequest(bed.post("/v1/chat/completions", user.key(), base + ",\"n\":1000}"), "n", "128");
        assertBadRequest(bed.post("/v1/responses", user.key(), "{\"model\":\"gpt-4o-mini\",\"input\":\"hi\",\"max_output_tokens\":1e12}"),
                "max_output_tokens", "10000000");
    }

    @Test
    void proxy_bodyOverTheLimit_is413() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        HttpResponse<String> r = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "x".repeat(5 << 20)));
        assertThat(r.statusCode()).as("a body over MAX_BODY_BYTES").isEqualTo(413);
        HttpResponse<String> m = api.send("POST", "/v1/metering/usage:batch", user.key(),
                "{\"events\":[" + batchItem("gpt-4o-mini", "/v1/chat/completions", "x".repeat(5 << 20)) + "]}");
        assertThat(m.statusCode()).as("the metering API has the same body limit").isEqualTo(413);
    }

    @Test
    void metering_reserve_boundsModelEndpointAndTokens() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        assertBadRequest(api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"" + HUGE + "\",\"estimated_prompt_tokens\":10}"), "model", "128");
        assertBadRequest(api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini\",\"endpoint\":\"/" + HUGE + "\",\"estimated_prompt_tokens\":10}"), "endpoint", "128");
        assertBadRequest(api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini\",\"endpoint\":\"/v1/chat\\ncompletions\"}"), "endpoint", "128");
        assertBadRequest(api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini\",\"estimated_prompt_tokens\":2000000000}"), "estimated_prompt_tokens", "1000000000");
        assertThat(bed.reservedNanoUsd(user.userId())).as("nothing reserved").isZero();
    }

    @Test
    void metering_commit_boundsUpstreamRequestIdAndTokens_thenAGoodCommitPublishes() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        HttpResponse<String> reserved = api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini\",\"estimated_prompt_tokens\":100,\"max_completion_tokens\":50}");
        assertThat(reserved.statusCode()).as(reserved.body()).isEqualTo(201);
        String commit = "/v1/metering/reservations/" + ApiCalls.pathSegment(ApiCalls.json(reserved).get("reservation_id").asText()) + "/commit";

        assertBadRequest(api.send("POST", commit, user.key(), "{\"prompt_tokens\":10,\"upstream_request_id\":\"" + HUGE + "\"}"),
                "upstream_request_id", "320");
        assertBadRequest(api.send("POST", commit, user.key(), "{\"prompt_tokens\":10,\"upstream_request_id\":\"req\\u0000x\"}"),
                "upstream_request_id", "320");
        assertBadRequest(api.send("POST", commit, user.key(), "{\"prompt_tokens\":5000000000}"), "prompt_tokens", "1000000000");

        HttpResponse<String> good = api.send("POST", commit, user.key(), "{\"prompt_tokens\":10,\"upstream_request_id\":\"req_abc123\"}");
        assertThat(good.statusCode()).as(good.body()).isEqualTo(200);
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(30));
        assertThat(events).singleElement().satisfies(e -> assertThat(e.getUpstreamRequestId()).isEqualTo("req_abc123"));
    }

    @Test
    void metering_reservationIdOutOfBounds_is400() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        HttpResponse<String> r = api.send("POST", "/v1/metering/reservations/" + "r".repeat(5_000) + "/commit", user.key(), "{}");
        assertBadRequest(r, "reservation_id", "512");
    }

    @Test
    void metering_batch_boundsModelEndpointAndUpstreamRequestId_nothingPublished() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        for (String item : List.of(batchItem(HUGE, "/v1/chat/completions", null),
                batchItem("gpt-4o-mini", "/" + HUGE, null),
                batchItem("gpt-4o-mini", "/v1/chat/completions", HUGE))) {
            HttpResponse<String> r = api.send("POST", "/v1/metering/usage:batch", user.key(), "{\"events\":[" + item + "]}");
            assertThat(r.statusCode()).as(r.body().substring(0, Math.min(300, r.body().length()))).isEqualTo(400);
            assertThat(r.body().length()).as("the message does not echo the input").isLessThan(1_000);
        }
        assertPipelineFlows();
        assertThat(bed.events(user.userId())).as("nothing of a bad batch is published").isEmpty();
    }
}
