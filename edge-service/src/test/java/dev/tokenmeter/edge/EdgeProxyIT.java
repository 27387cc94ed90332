package dev.tokenmeter.edge;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.Behavior;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.openai.RecordedRequest;
import dev.tokenmeter.testkit.openai.Usage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Issue 4: the proxy path end to end on the real engines and the fake OpenAI upstream. */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EdgeProxyIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** gpt-4o-mini@2024-07-18 from the seed migration V3: input, cached input, output nano-USD per token. */
    private static final long IN = 150, CACHED = 75, OUT = 600;
    /** OpenAI's reset format: 20ms, 1s, 6.5s, 6m0s, 1h2m3s. */
    private static final String OPENAI_DURATION = "\\d+ms|(\\d+h)?(\\d+m)?\\d+(\\.\\d+)?s";

    private static final String MASTER_KEY = java.util.Base64.getEncoder().encodeToString(new byte[32]);

    private FakeOpenAi openAi;
    private EdgeTestBed bed;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of("UPSTREAM_REQUEST_TIMEOUT", "1500ms", "MAX_BODY_BYTES", "65536",
                "PERSONAL_KEY_MASTER_KEY", MASTER_KEY));
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private static long miniCost(long prompt, long cached, long completion) {
        return (prompt - cached) * IN + cached * CACHED + completion * OUT;
    }

    private UsageEvent awaitOnlyEvent(User user) {
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20));
        assertThat(events).as("exactly one event per call").hasSize(1);
        return events.getFirst();
    }

    /** Makes a good call and waits for its event: every event of the user sent before it has arrived by then. */
    private List<UsageEvent> eventsAfterBarrier(User user) throws Exception {
        int before = bed.events(user.userId()).size();
        HttpResponse<String> ok = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "barrier"));
        assertThat(ok.statusCode()).isEqualTo(200);
        await("barrier event").atMost(Duration.ofSeconds(20)).until(() -> bed.events(user.userId()).size() > before);
        List<UsageEvent> events = bed.events(user.userId());
        assertThat(events.getLast().getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        return events.subList(0, events.size() - 1);
    }

    @Test
    void upstreamConnectionsAreKeptAliveAcrossWholeAndStreamedAnswers() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String marker = "keep-alive " + UUID.randomUUID();
        for (int i = 0; i < 6; i++) {
            assertThat(bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", marker + " whole " + i))
                    .statusCode()).isEqualTo(200);
            HttpResponse<String> stream = bed.post("/v1/chat/completions", user.key(),
                    EdgeTestBed.chatStream("gpt-4o-mini", marker + " stream " + i));
            assertThat(stream.statusCode()).isEqualTo(200);
            assertThat(stream.body()).contains("data: [DONE]");
        }
        List<RecordedRequest> calls = openAi.requests().stream().filter(r -> r.body().contains(marker)).toList();
        assertThat(calls).hasSize(12);
        // One call at a time: each finds the previous call's connection back in the pool (a second one may open
        // while the first is being released); without keep-alive there would be twelve.
        assertThat(calls.stream().map(RecordedRequest::connectionId).distinct().count())
                .as("upstream connections used by 12 sequential calls").isLessThanOrEqualTo(2);
    }

    @Test
    void unchangedSdkStyleChatCallIsProxiedAndBilledOnceFromReportedUsage() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String body = EdgeTestBed.chat("gpt-4o-mini", "Say hello to the edge");
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), body);

        assertThat(response.statusCode()).isEqualTo(200);
        JsonNode json = JSON.readTree(response.body());
        assertThat(json.path("object").asText()).isEqualTo("chat.completion");
        Usage expected = FakeOpenAi.usageFor("/v1/chat/completions", body);
        assertThat(json.path("usage").path("prompt_tokens").asLong()).isEqualTo(expected.promptTokens());
        assertThat(response.headers().firstValue("x-ratelimit-limit-requests")).hasValue("10000");
        assertThat(response.headers().firstValue("x-ratelimit-remaining-requests")).hasValue("9999");
        assertThat(response.headers().firstValue("x-ratelimit-reset-requests")).get().asString().matches(OPENAI_DURATION);
        assertThat(response.headers().firstValue("x-ratelimit-reset-tokens")).get().asString().matches(OPENAI_DURATION);
        assertThat(response.headers().firstValue("x-ratelimit-remaining-tokens")).isPresent();
        assertThat(response.headers().firstValue("x-ratelimit-limit-tokens")).isPresent();
        assertThat(response.headers().firstValue("x-credit-remaining-usd")).get().asString().matches("\\d+\\.\\d{9}");
        assertThat(response.headers().firstValue("x-request-id")).get().asString().startsWith("req_");

        RecordedRequest upstream = openAi.requests().getLast();
        assertThat(upstream.header("authorization")).isEqualTo("Bearer " + EdgeTestBed.SERVICE_KEY);
        assertThat(upstream.body()).isEqualTo(body);
        assertThat(upstream.headers().values()).noneMatch(v -> v.contains(user.key()));

        UsageEvent event = awaitOnlyEvent(user);
        long cost = miniCost(expected.promptTokens(), expected.cachedPromptTokens(), expected.completionTokens());
        assertThat(event.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(event.getKeySource()).isEqualTo(KeySource.SERVICE_CREDIT);
        assertThat(event.getPromptTokens()).isEqualTo(expected.promptTokens());
        assertThat(event.getCompletionTokens()).isEqualTo(expected.completionTokens());
        assertThat(event.getCostNanoUsd()).isEqualTo(cost).isPositive();
        assertThat(event.getPriceVersion()).isEqualTo("gpt-4o-mini@2024-07-18");
        assertThat(event.getApiKeyId()).isEqualTo(user.apiKeyId());
        assertThat(event.getTenantId()).isEqualTo(user.tenantId());
        assertThat(event.getUpstreamRequestId()).isEqualTo(response.headers().firstValue("x-request-id").orElseThrow());
        assertThat(event.getHttpStatus()).isEqualTo(200);
        assertThat(response.headers().firstValue("x-tokenmeter-event-id")).hasValue(event.getEventId());
        awaitSettled(user, cost);
    }

    @Test
    void sdkStyleStreamGetsUsageAddedAndIsBilledFromTheUsageChunk() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String body = EdgeTestBed.chatStream("gpt-4o-mini", "Stream something [[fake:completion=7]]");
        HttpResponse<InputStream> response = bed.client.send(bed.sdkRequest("/v1/chat/completions", user.key(), body).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).get().asString().startsWith("text/event-stream");
        List<String> data = new ArrayList<>();
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                if (line.startsWith("data: ")) {
                    data.add(line.substring(6));
                }
            }
        }
        assertThat(data.getLast()).isEqualTo("[DONE]");
        JsonNode usageChunk = JSON.readTree(data.get(data.size() - 2));
        String forwarded = openAi.requests().getLast().body();
        assertThat(JSON.readTree(forwarded).path("stream_options").path("include_usage").asBoolean()).isTrue();
        Usage expected = FakeOpenAi.usageFor("/v1/chat/completions", forwarded);
        assertThat(usageChunk.path("usage").path("completion_tokens").asLong()).isEqualTo(7).isEqualTo(expected.completionTokens());
        long contentDeltas = data.stream().filter(d -> d.contains("\"content\":\"") && !d.contains("\"content\":\"\"")).count();
        assertThat(contentDeltas).isEqualTo(7);

        UsageEvent event = awaitOnlyEvent(user);
        assertThat(event.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(event.getStreamed()).isTrue();
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(event.getPromptTokens()).isEqualTo(expected.promptTokens());
        assertThat(event.getCompletionTokens()).isEqualTo(7);
        assertThat(event.getCostNanoUsd()).isEqualTo(miniCost(expected.promptTokens(), 0, 7));
        awaitSettled(user, event.getCostNanoUsd());
    }

    @Test
    void streamCutBeforeItsUsageChunkIsBilledFromLocallyCountedTokens() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String body = EdgeTestBed.chatStream("gpt-4o-mini", "Tell me a long story [[fake:cut-after=3]]");
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), body);
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.body()).doesNotContain("[DONE]").doesNotContain("\"usage\":{");

        UsageEvent event = awaitOnlyEvent(user);
        Usage upstreamWouldHaveReported = FakeOpenAi.usageFor("/v1/chat/completions", openAi.requests().getLast().body());
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.ESTIMATED);
        assertThat(event.getOutcome()).isEqualTo(Outcome.FAILED);
        assertThat(event.getStreamed()).isTrue();
        // The local count uses the same formula and tokenizer as OpenAI's accounting for chat prompts.
        assertThat(event.getPromptTokens()).isEqualTo(upstreamWouldHaveReported.promptTokens());
        assertThat(event.getCompletionTokens()).as("three streamed one-token deltas").isEqualTo(3);
        assertThat(event.getCostNanoUsd()).isEqualTo(miniCost(event.getPromptTokens(), 0, 3)).isPositive();
        awaitSettled(user, event.getCostNanoUsd());
    }

    @Test
    void clientThatDisconnectsMidStreamIsBilledTheReportedUsageAndMarkedCancelled(Engines engines) throws Exception {
        try (FakeOpenAi slow = FakeOpenAi.builder().streamChunkDelay(Duration.ofMillis(50)).build();
             EdgeTestBed slowBed = new EdgeTestBed(engines, slow, Map.of())) {
            User user = slowBed.newUser(Money.usd(5));
            String body = EdgeTestBed.chatStream("gpt-4o-mini", "Go on and on [[fake:completion=40]]");
            assertThat(slowBed.readContentDeltasThenClose(user, body, 3)).isEqualTo(3);

            await("cancelled event").atMost(Duration.ofSeconds(20)).until(() -> !slowBed.events(user.userId()).isEmpty());
            UsageEvent event = slowBed.events(user.userId()).getFirst();
            // The edge read on after the caller left (UPSTREAM_DRAIN_TIMEOUT) and bills what the upstream reported
            // (issue 14, finding 7; EdgeClientDisconnectIT covers reasoning tokens and the drain timeout).
            Usage reported = FakeOpenAi.usageFor("/v1/chat/completions", slow.requests().getLast().body());
            assertThat(event.getOutcome()).isEqualTo(Outcome.CANCELLED);
            assertThat(event.getAttributes()).containsEntry("cancelled", "client_disconnected");
            assertThat(event.getUsageSource()).isEqualTo(UsageSource.REPORTED);
            assertThat(event.getCompletionTokens()).isEqualTo(reported.completionTokens()).isEqualTo(40);
            assertThat(event.getCostNanoUsd()).isEqualTo(miniCost(reported.promptTokens(), 0, 40));
            assertThat(slowBed.events(user.userId())).hasSize(1);

            // No buffering: chunks reach the caller as the upstream sends them (50 ms apart), not all at the end.
            User other = slowBed.newUser(Money.usd(5));
            HttpResponse<InputStream> stream = slowBed.client.send(slowBed.sdkRequest("/v1/chat/completions", other.key(),
                    EdgeTestBed.chatStream("gpt-4o-mini", "Ten words please [[fake:completion=10]]")).build(), HttpResponse.BodyHandlers.ofInputStream());
            long firstContentNanos = 0;
            long lastLineNanos = 0;
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(stream.body(), StandardCharsets.UTF_8))) {
                for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                    if (firstContentNanos == 0 && line.contains("\"content\":\"") && !line.contains("\"content\":\"\"")) {
                        firstContentNanos = System.nanoTime();
                    }
                    lastLineNanos = System.nanoTime();
                }
            }
            assertThat(Duration.ofNanos(lastLineNanos - firstContentNanos)).as("first chunk arrives well before the last")
                    .isGreaterThan(Duration.ofMillis(200));
        }
    }

    @Test
    void streamThatStallsAfterItsHeadersIsCutAtTheIdleTimeoutAndBilledEstimated(Engines engines) throws Exception {
        try (FakeOpenAi stalling = FakeOpenAi.builder().streamChunkDelay(Duration.ofSeconds(4)).build();
             EdgeTestBed stallBed = new EdgeTestBed(engines, stalling, Map.of("UPSTREAM_REQUEST_TIMEOUT", "700ms"))) {
            User user = stallBed.newUser(Money.usd(5));
            long start = System.nanoTime();
            HttpResponse<String> response = stallBed.post("/v1/chat/completions", user.key(),
                    EdgeTestBed.chatStream("gpt-4o-mini", "take your time"));
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(3));
            assertThat(response.statusCode()).isEqualTo(200);
            assertThat(response.body()).contains("\"role\":\"assistant\"").doesNotContain("[DONE]");
            await("stalled call's event").atMost(Duration.ofSeconds(20)).until(() -> !stallBed.events(user.userId()).isEmpty());
            UsageEvent event = stallBed.events(user.userId()).getFirst();
            assertThat(event.getOutcome()).isEqualTo(Outcome.FAILED);
            assertThat(event.getUsageSource()).isEqualTo(UsageSource.ESTIMATED);
            assertThat(event.getAttributes()).containsEntry("failure", "upstream_stream_cut");
            assertThat(event.getCostNanoUsd()).isEqualTo(miniCost(event.getPromptTokens(), 0, 0)).isPositive();
            assertThat(stallBed.reservedNanoUsd(user.userId())).isZero();
        }
    }

    @Test
    void personalKeyCallsGoUpstreamWithTheUsersOwnDecryptedKey() throws Exception {
        // No credit, but an own key: the quota engine routes the call to the user's key.
        User user = bed.newUser(0);
        dev.tokenmeter.edge.crypto.PersonalKeyCipher cipher = new dev.tokenmeter.edge.crypto.PersonalKeyCipher("k1", MASTER_KEY);
        dev.tokenmeter.edge.crypto.PersonalKeyCipher.Sealed sealed = cipher.seal(user.userId(), "openai", "sk-users-own-key-42");
        bed.db.insertInto(dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY)
                .set(dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY.USER_ID, user.userId())
                .set(dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY.KEY_CIPHERTEXT, sealed.ciphertext())
                .set(dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY.KEY_NONCE, sealed.nonce())
                .set(dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY.MASTER_KEY_ID, sealed.masterKeyId())
                .set(dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY.KEY_LAST4, "y-42")
                .execute();
        String body = EdgeTestBed.chat("gpt-4o-mini", "on my own key");
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), body);
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(openAi.requests().getLast().header("authorization")).isEqualTo("Bearer sk-users-own-key-42");
        UsageEvent event = awaitOnlyEvent(user);
        assertThat(event.getKeySource()).isEqualTo(KeySource.PERSONAL_KEY);
        Usage expected = FakeOpenAi.usageFor("/v1/chat/completions", body);
        assertThat(event.getCostNanoUsd()).isEqualTo(miniCost(expected.promptTokens(), 0, expected.completionTokens()));
        await("the personal-key call is settled").atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            assertThat(bed.usedNanoUsd(user.userId())).as("personal-key calls do not use the credit").isZero();
            assertThat(bed.usage(user.userId()).personalKeyNanoUsd()).isEqualTo(event.getCostNanoUsd());
        });
    }

    @Test
    void malformedJsonIs400AndBillsNothing() throws Exception {
        User user = bed.newUser(Money.usd(5));
        int upstreamCalls = openAi.requestCount();
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), "{\"model\": \"gpt-4o-mini\", ");
        assertThat(response.statusCode()).isEqualTo(400);
        JsonNode error = JSON.readTree(response.body()).path("error");
        assertThat(error.path("type").asText()).isEqualTo("invalid_request_error");
        assertThat(error.path("message").asText()).contains("could not parse the JSON body");
        assertThat(response.headers().firstValue("x-should-retry")).hasValue("false");
        assertThat(openAi.requestCount()).isEqualTo(upstreamCalls);
        assertRejectedAndUnbilled(user, "malformed_json");
    }

    @Test
    void missingModelIs400NamingTheParam() throws Exception {
        User user = bed.newUser(Money.usd(5));
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        assertThat(response.statusCode()).isEqualTo(400);
        JsonNode error = JSON.readTree(response.body()).path("error");
        assertThat(error.path("param").asText()).isEqualTo("model");
        assertThat(error.path("type").asText()).isEqualTo("invalid_request_error");
        assertRejectedAndUnbilled(user, "missing_model");
    }

    @Test
    void oversizedBodyIs413() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String big = EdgeTestBed.chat("gpt-4o-mini", "x".repeat(70_000));
        int upstreamCalls = openAi.requestCount();
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), big);
        assertThat(response.statusCode()).isEqualTo(413);
        assertThat(JSON.readTree(response.body()).path("error").path("code").asText()).isEqualTo("request_too_large");
        assertThat(openAi.requestCount()).isEqualTo(upstreamCalls);
        assertRejectedAndUnbilled(user, "body_too_large");
    }

    @Test
    void unknownModelIs400ModelNotFoundNeverASilentZero() throws Exception {
        User user = bed.newUser(Money.usd(5));
        int upstreamCalls = openAi.requestCount();
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-9-unpriced", "hi"));
        assertThat(response.statusCode()).isEqualTo(400);
        JsonNode error = JSON.readTree(response.body()).path("error");
        assertThat(error.path("code").asText()).isEqualTo("model_not_found");
        assertThat(error.path("param").asText()).isEqualTo("model");
        assertThat(openAi.requestCount()).isEqualTo(upstreamCalls);
        assertRejectedAndUnbilled(user, "model_not_found");
    }

    /**
     * The user's settled spend is exactly {@code usedNanoUsd} and nothing is reserved. A call is settled right after its
     * answer went out (issue 4), so this waits for it.
     */
    private void awaitSettled(User user, long usedNanoUsd) {
        await("settled spend " + usedNanoUsd + " and no open reservation").atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(usedNanoUsd);
            assertThat(bed.reservedNanoUsd(user.userId())).isZero();
        });
    }

    private void assertRejectedAndUnbilled(User user, String reason) throws Exception {
        List<UsageEvent> before = eventsAfterBarrier(user);
        assertThat(before).hasSize(1);
        UsageEvent rejected = before.getFirst();
        assertThat(rejected.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(rejected.getKeySource()).isEqualTo(KeySource.NONE);
        assertThat(rejected.getCostNanoUsd()).isZero();
        assertThat(rejected.getAttributes()).containsEntry("reject_reason", reason);
        UsageEvent barrier = bed.events(user.userId()).getLast();
        awaitSettled(user, barrier.getCostNanoUsd());
    }

    @Test
    void invalidKeyIs401AndNothingIsBilled() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String wrongSecret = user.key().substring(0, user.key().length() - 4) + "zzzz";
        int upstreamCalls = openAi.requestCount();
        for (String key : List.of(wrongSecret, "tm_garbage", "sk-not-ours")) {
            HttpResponse<String> response = bed.post("/v1/chat/completions", key, EdgeTestBed.chat("gpt-4o-mini", "hi"));
            assertThat(response.statusCode()).isEqualTo(401);
            JsonNode error = JSON.readTree(response.body()).path("error");
            assertThat(error.path("code").asText()).isEqualTo("invalid_api_key");
            assertThat(error.path("message").asText()).doesNotContain(key.substring(key.length() - 8));
            assertThat(response.headers().firstValue("x-should-retry")).hasValue("false");
        }
        assertThat(openAi.requestCount()).isEqualTo(upstreamCalls);
        assertThat(eventsAfterBarrier(user)).as("no event for unauthenticated calls").isEmpty();
        awaitSettled(user, bed.events(user.userId()).getLast().getCostNanoUsd());
    }

    @Test
    void revokedKeyIs401() throws Exception {
        User user = bed.newUser(Money.usd(5));
        User revoked = bed.issueKey(user.userId(), user.tenantId());
        bed.revoke(revoked);
        HttpResponse<String> response = bed.post("/v1/chat/completions", revoked.key(), EdgeTestBed.chat("gpt-4o-mini", "hi"));
        assertThat(response.statusCode()).isEqualTo(401);
        assertThat(JSON.readTree(response.body()).path("error").path("code").asText()).isEqualTo("invalid_api_key");
        assertThat(eventsAfterBarrier(user)).isEmpty();
    }

    @Test
    void upstream5xxPassesThroughAndReleasesTheReservation() throws Exception {
        User user = bed.newUser(Money.usd(5));
        openAi.enqueue(Behavior.status(500));
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "hi"));
        assertThat(response.statusCode()).isEqualTo(500);
        assertThat(JSON.readTree(response.body()).path("error").path("type").asText()).isEqualTo("server_error");

        UsageEvent event = awaitOnlyEvent(user);
        assertThat(event.getOutcome()).isEqualTo(Outcome.FAILED);
        assertThat(event.getHttpStatus()).isEqualTo(500);
        assertThat(event.getCostNanoUsd()).isZero();
        assertThat(response.headers().firstValue("x-tokenmeter-event-id")).hasValue(event.getEventId());
        assertThat(event.getKeySource()).isEqualTo(KeySource.SERVICE_CREDIT);
        assertThat(bed.usedNanoUsd(user.userId())).isZero();
        assertThat(bed.reservedNanoUsd(user.userId())).isZero();
    }

    @Test
    void upstreamTimeoutIs504AndReleasesTheReservation() throws Exception {
        User user = bed.newUser(Money.usd(5));
        openAi.enqueue(Behavior.hang(Duration.ofSeconds(5)));
        long start = System.nanoTime();
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "hi"));
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(4));
        assertThat(response.statusCode()).isEqualTo(504);
        JsonNode error = JSON.readTree(response.body()).path("error");
        assertThat(error.path("code").asText()).isEqualTo("upstream_timeout");

        UsageEvent event = awaitOnlyEvent(user);
        assertThat(event.getOutcome()).isEqualTo(Outcome.FAILED);
        assertThat(event.getHttpStatus()).isEqualTo(504);
        assertThat(event.getCostNanoUsd()).isZero();
        assertThat(bed.usedNanoUsd(user.userId())).isZero();
        assertThat(bed.reservedNanoUsd(user.userId())).isZero();
    }

    @Test
    void creditExhaustedIs429InsufficientQuotaWithARejectedEvent() throws Exception {
        User user = bed.newUser(1);
        HttpResponse<String> response = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "hi"));
        assertThat(response.statusCode()).isEqualTo(429);
        assertThat(JSON.readTree(response.body()).path("error").path("code").asText()).isEqualTo("insufficient_quota");
        assertThat(response.headers().firstValue("x-should-retry")).hasValue("false");
        UsageEvent event = awaitOnlyEvent(user);
        assertThat(event.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(event.getKeySource()).isEqualTo(KeySource.NONE);
        assertThat(event.getCostNanoUsd()).isZero();
        assertThat(event.getAttributes()).containsEntry("reject_reason", "CREDIT_EXHAUSTED");
    }

    @Test
    void rateLimitedIs429WithRetryAfter() throws Exception {
        User limited = bed.newUser(Money.usd(5), 1);
        assertThat(bed.post("/v1/chat/completions", limited.key(), EdgeTestBed.chat("gpt-4o-mini", "one")).statusCode()).isEqualTo(200);
        HttpResponse<String> r = bed.post("/v1/chat/completions", limited.key(), EdgeTestBed.chat("gpt-4o-mini", "two"));
        assertThat(r.statusCode()).isEqualTo(429);
        JsonNode error = JSON.readTree(r.body()).path("error");
        assertThat(error.path("code").asText()).isEqualTo("rate_limit_exceeded");
        assertThat(error.path("type").asText()).isEqualTo("requests");
        assertThat(Long.parseLong(r.headers().firstValue("retry-after").orElseThrow())).isBetween(1L, 60L);
        assertThat(r.headers().firstValue("x-ratelimit-limit-requests")).hasValue("1");
        assertThat(r.headers().firstValue("x-ratelimit-remaining-requests")).hasValue("0");
        assertThat(r.headers().firstValue("x-ratelimit-reset-requests")).get().asString().matches(OPENAI_DURATION);
        UsageEvent rejected = bed.awaitEvents(limited.userId(), 2, Duration.ofSeconds(20)).get(1);
        assertThat(rejected.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(rejected.getCostNanoUsd()).isZero();
        assertThat(rejected.getAttributes()).containsEntry("reject_reason", "RATE_LIMITED_REQUESTS");
    }

    @Test
    void quotaUnavailableIs503RetryableAndNothingGoesUpstream(Engines engines) throws Exception {
        try (FakeOpenAi upstream = FakeOpenAi.start();
             EdgeTestBed broken = new EdgeTestBed(engines, upstream, Map.of(), true)) {
            User user = broken.newUser(Money.usd(5));
            HttpResponse<String> u = broken.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "hi"));
            assertThat(u.statusCode()).isEqualTo(503);
            assertThat(JSON.readTree(u.body()).path("error").path("type").asText()).isEqualTo("server_error");
            assertThat(u.headers().firstValue("retry-after")).hasValue("2");
            assertThat(u.headers().firstValue("x-should-retry")).hasValue("true");
            assertThat(upstream.requestCount()).isZero();
            await("rejected event").atMost(Duration.ofSeconds(20)).until(() -> !broken.events(user.userId()).isEmpty());
            UsageEvent event = broken.events(user.userId()).getFirst();
            assertThat(event.getOutcome()).isEqualTo(Outcome.REJECTED);
            assertThat(event.getAttributes()).containsEntry("reject_reason", "QUOTA_UNAVAILABLE");
            assertThat(event.getCostNanoUsd()).isZero();
        }
    }

    @Test
    void embeddingsAndResponsesAreProxiedAndBilled() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String embed = "{\"input\":\"hello embeddings\",\"model\":\"text-embedding-3-small\",\"encoding_format\":\"base64\"}";
        HttpResponse<String> e = bed.post("/v1/embeddings", user.key(), embed);
        assertThat(e.statusCode()).isEqualTo(200);
        String resp = "{\"model\":\"gpt-4o-mini\",\"input\":\"hello responses\",\"stream\":true}";
        HttpResponse<String> r = bed.post("/v1/responses", user.key(), resp);
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.body()).contains("response.completed");

        String completions = "{\"model\":\"gpt-4o-mini\",\"prompt\":\"Once upon a time\",\"max_tokens\":5,\"stream\":true}";
        HttpResponse<String> c = bed.post("/v1/completions", user.key(), completions);
        assertThat(c.statusCode()).isEqualTo(200);
        assertThat(c.body()).contains("text_completion").endsWith("data: [DONE]\n\n");
        Usage completionsUsage = FakeOpenAi.usageFor("/v1/completions", openAi.requests().getLast().body());

        List<UsageEvent> events = bed.awaitEvents(user.userId(), 3, Duration.ofSeconds(20));
        assertThat(events).hasSize(3);
        assertThat(events.get(2).getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(events.get(2).getCompletionTokens()).isEqualTo(5).isEqualTo(completionsUsage.completionTokens());
        assertThat(events.get(2).getCostNanoUsd()).isEqualTo(miniCost(completionsUsage.promptTokens(), 0, 5));
        Usage embedUsage = FakeOpenAi.usageFor("/v1/embeddings", embed);
        assertThat(events.get(0).getCostNanoUsd()).isEqualTo(embedUsage.promptTokens() * 20);
        assertThat(events.get(0).getUsageSource()).isEqualTo(UsageSource.REPORTED);
        Usage respUsage = FakeOpenAi.usageFor("/v1/responses", resp);
        assertThat(events.get(1).getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(events.get(1).getCompletionTokens()).isEqualTo(respUsage.completionTokens());
        assertThat(events.get(1).getCostNanoUsd()).isEqualTo(miniCost(respUsage.promptTokens(), 0, respUsage.completionTokens()));
    }

    @Test
    void healthAndMetricsEndpoints() throws Exception {
        var live = bed.client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(bed.baseUrl() + "/health/live")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(live.statusCode()).isEqualTo(200);
        var ready = bed.client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(bed.baseUrl() + "/health/ready")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(ready.statusCode()).isEqualTo(200);
        User user = bed.newUser(Money.usd(5));
        bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "metrics"));
        var metrics = bed.client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(bed.adminUrl() + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(metrics.statusCode()).isEqualTo(200);
        assertThat(metrics.body()).contains("edge_requests_total{endpoint=\"/v1/chat/completions\",outcome=\"succeeded\"}")
                .contains("edge_quota_decision_seconds").contains("edge_upstream_seconds")
                .contains("edge_spool_pending_events").contains("edge_fail_open_admissions_total");
    }
}
