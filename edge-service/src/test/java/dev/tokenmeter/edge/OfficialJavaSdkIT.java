package dev.tokenmeter.edge;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.RateLimitException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.embeddings.CreateEmbeddingResponse;
import com.openai.models.embeddings.EmbeddingCreateParams;
import com.openai.models.responses.Response;
import com.openai.models.responses.ResponseCreateParams;
import com.openai.models.responses.ResponseStreamEvent;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.openai.Usage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Issue 4: the edge is a drop-in OpenAI base URL for the unchanged official OpenAI Java SDK ({@code
 * com.openai:openai-java}, its default OkHttp client, base URL and API key its only settings), streaming included,
 * and every SDK call is billed exactly once. The SDK's strict parsers also check that the fake upstream speaks
 * OpenAI's wire format (chat chunks, typed Responses events, embeddings).
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OfficialJavaSdkIT {

    private FakeOpenAi openAi;
    private EdgeTestBed bed;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of());
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private OpenAIClient sdk(String apiKey) {
        return OpenAIOkHttpClient.builder().baseUrl(bed.baseUrl() + "/v1").apiKey(apiKey).build();
    }

    private static ChatCompletionCreateParams chat(String text) {
        return ChatCompletionCreateParams.builder().model("gpt-4o-mini").addUserMessage(text).maxCompletionTokens(50).build();
    }

    private List<UsageEvent> awaitEvents(User user, int n) {
        List<UsageEvent> events = bed.awaitEvents(user.userId(), n, Duration.ofSeconds(20));
        assertThat(events).as("one event per call").hasSize(n);
        return events;
    }

    @Test
    void completionAndStreamThroughTheUnchangedSdkAreEachBilledOnce() {
        User user = bed.newUser(Money.usd(5));
        OpenAIClient client = sdk(user.key());
        try {
            ChatCompletion completion = client.chat().completions().create(chat("Say hello [[fake:completion=9]]"));
            assertThat(completion.choices()).hasSize(1);
            assertThat(completion.choices().getFirst().message().content()).isPresent();
            assertThat(completion.usage()).isPresent();
            assertThat(completion.usage().get().completionTokens()).isEqualTo(9);

            StringBuilder text = new StringBuilder();
            long streamedCompletionTokens = -1;
            int chunks = 0;
            try (StreamResponse<ChatCompletionChunk> stream =
                         client.chat().completions().createStreaming(chat("Stream a little [[fake:completion=7]]"))) {
                for (ChatCompletionChunk chunk : (Iterable<ChatCompletionChunk>) stream.stream()::iterator) {
                    chunks++;
                    chunk.choices().forEach(c -> c.delta().content().ifPresent(text::append));
                    if (chunk.usage().isPresent()) {
                        streamedCompletionTokens = chunk.usage().get().completionTokens();
                    }
                }
            }
            assertThat(chunks).as("the stream arrived as chunks").isGreaterThan(2);
            assertThat(text).as("streamed text").isNotEmpty();
            // The SDK did not ask for usage; the edge did (stream_options.include_usage), and the SDK parsed the chunk.
            assertThat(streamedCompletionTokens).isEqualTo(7);

            List<UsageEvent> events = awaitEvents(user, 2);
            assertThat(events).allSatisfy(e -> {
                assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
                assertThat(e.getUsageSource()).isEqualTo(UsageSource.REPORTED);
                assertThat(e.getCostNanoUsd()).isPositive();
            });
            assertThat(events.stream().map(UsageEvent::getStreamed)).containsExactlyInAnyOrder(false, true);
            Usage whole = FakeOpenAi.usageFor("/v1/chat/completions",
                    openAi.requests().stream().filter(r -> r.body().contains("Say hello")).findFirst().orElseThrow().body());
            UsageEvent wholeEvent = events.stream().filter(e -> !e.getStreamed()).findFirst().orElseThrow();
            assertThat(wholeEvent.getPromptTokens()).isEqualTo(whole.promptTokens());
            assertThat(wholeEvent.getCompletionTokens()).isEqualTo(9);
        } finally {
            client.close();
        }
    }

    @Test
    void responsesStreamedAndWholeAndEmbeddingsThroughTheUnchangedSdkAreEachBilledOnce() {
        User user = bed.newUser(Money.usd(5));
        OpenAIClient client = sdk(user.key());
        try {
            Response whole = client.responses().create(ResponseCreateParams.builder().model("gpt-4o-mini")
                    .input("Answer briefly [[fake:completion=5]]").build());
            assertThat(whole.usage()).isPresent();
            assertThat(whole.usage().get().outputTokens()).isEqualTo(5);

            long streamedOutputTokens = -1;
            int events = 0;
            try (StreamResponse<ResponseStreamEvent> stream = client.responses().createStreaming(ResponseCreateParams.builder()
                    .model("gpt-4o-mini").input("Stream an answer [[fake:completion=6]]").build())) {
                for (ResponseStreamEvent event : (Iterable<ResponseStreamEvent>) stream.stream()::iterator) {
                    events++;
                    if (event.isCompleted()) {
                        streamedOutputTokens = event.asCompleted().response().usage().orElseThrow().outputTokens();
                    }
                }
            }
            assertThat(events).as("typed stream events").isGreaterThan(2);
            assertThat(streamedOutputTokens).as("usage of response.completed").isEqualTo(6);

            CreateEmbeddingResponse embedding = client.embeddings().create(EmbeddingCreateParams.builder()
                    .model("text-embedding-3-small").input("embed me").build());
            assertThat(embedding.data()).hasSize(1);
            assertThat(embedding.data().getFirst().embedding()).isNotEmpty();

            List<UsageEvent> billed = awaitEvents(user, 3);
            assertThat(billed).allSatisfy(e -> {
                assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
                assertThat(e.getUsageSource()).isEqualTo(UsageSource.REPORTED);
                assertThat(e.getCostNanoUsd()).isPositive();
            });
            assertThat(billed.stream().map(UsageEvent::getEndpoint))
                    .containsExactlyInAnyOrder("/v1/responses", "/v1/responses", "/v1/embeddings");
            assertThat(billed.stream().filter(e -> e.getEndpoint().equals("/v1/responses")).map(UsageEvent::getCompletionTokens))
                    .containsExactlyInAnyOrder(5L, 6L);
            assertThat(billed.stream().filter(e -> e.getEndpoint().equals("/v1/embeddings")).findFirst().orElseThrow().getPromptTokens())
                    .isEqualTo(embedding.usage().promptTokens());
        } finally {
            client.close();
        }
    }

    @Test
    void sdkRaisesItsOwnExceptionsForTheEdgesErrorsAndDoesNotRetryWhatCannotSucceed() {
        OpenAIClient badKey = sdk("tm_not_a_real_key_000000000000");
        try {
            assertThatThrownBy(() -> badKey.chat().completions().create(chat("hello")))
                    .isInstanceOf(UnauthorizedException.class)
                    .hasMessageContaining("Incorrect API key");
        } finally {
            badKey.close();
        }

        User broke = bed.newUser(0);
        OpenAIClient client = sdk(broke.key());
        int upstreamBefore = openAi.requestCount();
        try {
            // 429 insufficient_quota with x-should-retry: false: the SDK's default is two retries on a 429, and it
            // must make none here.
            assertThatThrownBy(() -> client.chat().completions().create(chat("hello")))
                    .isInstanceOfSatisfying(RateLimitException.class, e ->
                            assertThat(e.code()).hasValue("insufficient_quota"));
        } finally {
            client.close();
        }
        // A barrier call after the SDK's: the user's events arrive in order, so once its event is in, any retry the
        // SDK made would be too (one event per attempt).
        try {
            assertThat(bed.post("/v1/chat/completions", broke.key(), EdgeTestBed.chat("gpt-4o-mini", "barrier")).statusCode())
                    .isEqualTo(429);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        List<UsageEvent> events = awaitEvents(broke, 2);
        assertThat(events).as("the SDK's one attempt and the barrier").allSatisfy(e -> {
            assertThat(e.getOutcome()).isEqualTo(Outcome.REJECTED);
            assertThat(e.getCostNanoUsd()).isZero();
        });
        assertThat(openAi.requestCount()).as("nothing reached the upstream").isEqualTo(upstreamBefore);
    }
}
