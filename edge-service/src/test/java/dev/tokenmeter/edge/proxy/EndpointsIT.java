package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.openai.RecordedRequest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 16 (ADR 0085), on the real engines and the fake upstream: {@code /v1/moderations} is proxied, free and still
 * one event per call; every other {@code /v1/...} path is refused in OpenAI's shape before anything is spent.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EndpointsIT {

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

    @Test
    void moderations_areProxied_freeAndOneEventEach() throws Exception {
        User user = bed.newUser(Money.usd(1));
        String marker = "moderate " + UUID.randomUUID();
        // OpenAI's default model when none is named; an array of inputs names one explicitly.
        HttpResponse<String> noModel = bed.post("/v1/moderations", user.key(), "{\"input\":" + EdgeTestBed.quote(marker) + "}");
        assertThat(noModel.statusCode()).as(noModel.body()).isEqualTo(200);
        assertThat(ApiCalls.json(noModel).at("/results/0/flagged").asBoolean(true)).isFalse();
        HttpResponse<String> named = bed.post("/v1/moderations", user.key(),
                "{\"model\":\"text-moderation-latest\",\"input\":[\"one " + marker + "\",\"two\"]}");
        assertThat(named.statusCode()).as(named.body()).isEqualTo(200);
        assertThat(ApiCalls.json(named).get("results")).hasSize(2);

        List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(20));
        assertThat(events).as("one event per call").hasSize(2);
        UsageEvent first = events.get(0);
        assertThat(first.getEndpoint()).isEqualTo("/v1/moderations");
        assertThat(first.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(first.getModel()).isEqualTo("omni-moderation-latest");
        assertThat(first.getAnsweredModel()).isEqualTo("omni-moderation-2024-09-26");
        assertThat(first.getPriceVersion()).isEqualTo("omni-moderation-latest@2024-09-26");
        // OpenAI reports no usage for a moderation: the tokens are the edge's count of the input.
        assertThat(first.getUsageSource()).isEqualTo(UsageSource.ESTIMATED);
        assertThat(first.getPromptTokens()).isPositive();
        assertThat(first.getCompletionTokens()).isZero();
        UsageEvent second = events.get(1);
        assertThat(second.getModel()).isEqualTo("text-moderation-latest");
        assertThat(second.getAnsweredModel()).isEqualTo("text-moderation-007");
        assertThat(second.getPriceVersion()).isEqualTo("text-moderation-latest@2022-08-10");
        assertThat(events).extracting(UsageEvent::getCostNanoUsd).containsExactly(0L, 0L);
        assertThat(events).extracting(UsageEvent::getEventId).doesNotHaveDuplicates();

        // The body went upstream byte for byte (no model added), on the service key, never the caller's.
        List<RecordedRequest> sent = openAi.requests().stream().filter(r -> r.body().contains(marker)).toList();
        assertThat(sent).hasSize(2);
        assertThat(sent.get(0).body()).isEqualTo("{\"input\":" + EdgeTestBed.quote(marker) + "}");
        assertThat(sent.get(0).path()).isEqualTo("/v1/moderations");
        assertThat(sent).allSatisfy(r -> assertThat(r.headers().get("Authorization")).doesNotContain(user.key()));
        await("reservations settled at $0").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isZero();
    }

    @Test
    void aModerationWithoutInputOrWithAnUnpricedModel_isRefusedOrPassedUpstreamsError_withOneEvent() throws Exception {
        User user = bed.newUser(Money.usd(1));
        HttpResponse<String> unpriced = bed.post("/v1/moderations", user.key(), "{\"model\":\"nosuch-moderation\",\"input\":\"x\"}");
        assertThat(unpriced.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(unpriced).at("/error/code").asText()).isEqualTo("model_not_found");
        // No input: the upstream's own 400 passes through, a FAILED event at $0.
        HttpResponse<String> noInput = bed.post("/v1/moderations", user.key(), "{\"model\":\"omni-moderation-latest\"}");
        assertThat(noInput.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(noInput).at("/error/param").asText()).isEqualTo("input");
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(20));
        assertThat(events).extracting(UsageEvent::getOutcome).containsExactly(Outcome.REJECTED, Outcome.FAILED);
        assertThat(events).extracting(UsageEvent::getCostNanoUsd).containsExactly(0L, 0L);
    }

    /** gpt-image-1@2025-04-23 (V27_1): text input, output nano-USD per token. */
    private static final long IMAGE_TEXT_INPUT = 5000;
    private static final long IMAGE_OUTPUT = 40000;

    @Test
    void imageGenerations_areBilledByTheirImageTokens_exactly() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String body = "{\"model\":\"gpt-image-1\",\"prompt\":\"a red fox in the snow " + UUID.randomUUID()
                + "\",\"n\":2,\"size\":\"1024x1536\",\"quality\":\"low\"}";
        HttpResponse<String> r = bed.post("/v1/images/generations", user.key(), body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        assertThat(ApiCalls.json(r).get("data")).hasSize(2);
        JsonNode usage = ApiCalls.json(r).get("usage");
        assertThat(usage.get("output_tokens").asLong()).as("2 low 1024x1536 images, OpenAI's table").isEqualTo(2 * 408);

        UsageEvent e = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20)).getFirst();
        assertThat(e.getEndpoint()).isEqualTo("/v1/images/generations");
        assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(e.getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(e.getModel()).isEqualTo("gpt-image-1");
        assertThat(e.getPriceVersion()).isEqualTo("gpt-image-1@2025-04-23");
        assertThat(e.getPromptTokens()).isEqualTo(usage.get("input_tokens").asLong()).isPositive();
        assertThat(e.getCompletionTokens()).isEqualTo(816);
        assertThat(e.getCostNanoUsd()).isEqualTo(e.getPromptTokens() * IMAGE_TEXT_INPUT + 816 * IMAGE_OUTPUT);
        assertThat(e.getAttributes()).as("no image input in a generation").doesNotContainKey("image_input_tokens");
        await("reservation settled with the billed cost").atMost(Duration.ofSeconds(10))
                .until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(e.getCostNanoUsd());
    }

    @Test
    void badImageRequests_getOpenAiStyleErrors() throws Exception {
        User user = bed.newUser(Money.usd(5));
        int upstreamBefore = openAi.requestCount();
        // Out of bounds (n: 1..10): a 400 and nothing else (ADR 0053).
        HttpResponse<String> tooMany = bed.post("/v1/images/generations", user.key(), "{\"model\":\"gpt-image-1\",\"prompt\":\"x\",\"n\":11}");
        assertThat(tooMany.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(tooMany).at("/error/param").asText()).isEqualTo("n");
        // Refused before the upstream, one REJECTED event each: a stream, a model without a price (dall-e-3).
        HttpResponse<String> stream = bed.post("/v1/images/generations", user.key(), "{\"model\":\"gpt-image-1\",\"prompt\":\"x\",\"stream\":true}");
        assertThat(stream.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(stream).at("/error/param").asText()).isEqualTo("stream");
        HttpResponse<String> dalle = bed.post("/v1/images/generations", user.key(), "{\"model\":\"dall-e-3\",\"prompt\":\"x\"}");
        assertThat(dalle.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(dalle).at("/error/code").asText()).isEqualTo("model_not_found");
        assertThat(openAi.requestCount()).as("nothing went upstream yet").isEqualTo(upstreamBefore);
        // A size OpenAI does not make: its own 400 passes through, a FAILED event at $0.
        HttpResponse<String> size = bed.post("/v1/images/generations", user.key(), "{\"model\":\"gpt-image-1\",\"prompt\":\"x\",\"size\":\"999x999\"}");
        assertThat(size.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(size).at("/error/param").asText()).isEqualTo("size");
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 3, Duration.ofSeconds(20));
        assertThat(events).extracting(UsageEvent::getOutcome).containsExactly(Outcome.REJECTED, Outcome.REJECTED, Outcome.FAILED);
        assertThat(events).extracting(UsageEvent::getCostNanoUsd).containsExactly(0L, 0L, 0L);
        await("reservations released").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isZero();
    }

    @Test
    void speech_isBilledByTheInputsCharacters_exactly() throws Exception {
        User user = bed.newUser(Money.usd(5));
        // 12 code points, 13 UTF-16 chars, 17 UTF-8 bytes: characters are code points.
        String input = "héllo wörld\uD83D\uDE42";
        HttpResponse<byte[]> r = bed.client.send(bed.sdkRequest("/v1/audio/speech", user.key(),
                "{\"model\":\"tts-1\",\"voice\":\"alloy\",\"input\":" + EdgeTestBed.quote(input) + "}").build(),
                HttpResponse.BodyHandlers.ofByteArray());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("content-type")).hasValue("audio/mpeg");
        assertThat(r.body()).as("the audio, byte for byte").hasSize(4 + 16 * 12);
        UsageEvent e = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20)).getFirst();
        assertThat(e.getEndpoint()).isEqualTo("/v1/audio/speech");
        assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(e.getPromptTokens()).as("characters").isEqualTo(12);
        assertThat(e.getCostNanoUsd()).isEqualTo(12 * 15_000L);
        assertThat(e.getPriceVersion()).isEqualTo("tts-1@2023-11-06");
        // Beyond OpenAI's 4,096 characters: a 400 and nothing else; a model billed by unreported tokens: unpriced.
        HttpResponse<String> tooLong = bed.post("/v1/audio/speech", user.key(),
                "{\"model\":\"tts-1\",\"voice\":\"alloy\",\"input\":\"" + "a".repeat(4097) + "\"}");
        assertThat(tooLong.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(tooLong).at("/error/param").asText()).isEqualTo("input");
        HttpResponse<String> miniTts = bed.post("/v1/audio/speech", user.key(), "{\"model\":\"gpt-4o-mini-tts\",\"voice\":\"alloy\",\"input\":\"x\"}");
        assertThat(miniTts.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(miniTts).at("/error/code").asText()).isEqualTo("model_not_found");
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(20));
        assertThat(events).extracting(UsageEvent::getOutcome).containsExactly(Outcome.SUCCEEDED, Outcome.REJECTED);
        await("reservation settled").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(12 * 15_000L);
    }

    @Test
    void everyOtherV1Path_isRefusedInOpenAisShape_withNothingSpent() throws Exception {
        User user = bed.newUser(Money.usd(1));
        int upstreamBefore = openAi.requestCount();
        String longPath = "/v1/" + "x".repeat(400);
        String[][] calls = {
            {"POST", "/v1/fine_tuning/jobs"}, {"POST", "/v1/assistants"}, {"GET", "/v1/models"},
            {"GET", "/v1/chat/completions"}, {"DELETE", "/v1/files/file-abc"}, {"POST", "/v1/realtime/sessions"},
            {"POST", longPath},
        };
        for (String[] c : calls) {
            HttpResponse<String> r = api.send(c[0], c[1], user.key(), c[0].equals("POST") ? "{\"model\":\"gpt-4o-mini\"}" : null);
            assertThat(r.statusCode()).as(c[0] + " " + c[1] + ": " + r.body()).isEqualTo(404);
            JsonNode error = ApiCalls.json(r).get("error");
            assertThat(error.get("code").asText()).isEqualTo("unsupported_endpoint");
            assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
            assertThat(error.get("message").asText()).contains("/v1/moderations").hasSizeLessThan(500);
            assertThat(r.headers().firstValue("x-should-retry")).hasValue("false");
        }
        // Without a key too: nothing about the caller is needed to say the path is not served.
        assertThat(api.send("POST", "/v1/fine_tuning/jobs", null, "{}").statusCode()).isEqualTo(404);
        // The routes the edge does serve under /v1 still answer.
        HttpResponse<String> usage = api.send("GET", "/v1/usage", user.key(), null);
        assertThat(usage.statusCode()).as(usage.body()).isEqualTo(200);
        assertThat(openAi.requestCount()).as("nothing went upstream").isEqualTo(upstreamBefore);
        // No event for a refused path: the next call's event is the user's first.
        assertThat(bed.post("/v1/moderations", user.key(), "{\"input\":\"after\"}").statusCode()).isEqualTo(200);
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20));
        assertThat(events).extracting(UsageEvent::getEndpoint).containsExactly("/v1/moderations");
    }
}
