package dev.tokenmeter.testkit.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class FakeOpenAiTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String KEY = "sk-test-123";
    private static FakeOpenAi fake;
    private static HttpClient http;

    @BeforeAll
    static void start() {
        fake = FakeOpenAi.start();
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    }

    @AfterAll
    static void stop() {
        fake.close();
        http.close();
    }

    @BeforeEach
    void clean() {
        fake.reset();
    }

    private static HttpRequest.Builder post(String path, String body) {
        return HttpRequest.newBuilder(URI.create(fake.baseUrl() + path))
                .header("Authorization", "Bearer " + KEY)
                .header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(10))
                .POST(HttpRequest.BodyPublishers.ofString(body));
    }

    private static HttpResponse<String> send(HttpRequest request) throws IOException, InterruptedException {
        return http.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private static String chat(String model, String userText, String extra) {
        return "{\"model\":\"" + model + "\"" + extra + ",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                + "{\"role\":\"user\",\"content\":\"" + userText + "\"}]}";
    }

    /** The SSE data payloads of a stream that ends normally. */
    private static List<String> dataLines(String sse) {
        List<String> out = new ArrayList<>();
        for (String line : sse.split("\n")) {
            if (line.startsWith("data: ")) {
                out.add(line.substring("data: ".length()));
            }
        }
        return out;
    }

    private static void assertUsage(JsonNode usage, Usage expected) {
        assertThat(usage.get("prompt_tokens").asLong()).isEqualTo(expected.promptTokens());
        assertThat(usage.get("completion_tokens").asLong()).isEqualTo(expected.completionTokens());
        assertThat(usage.get("total_tokens").asLong()).isEqualTo(expected.totalTokens());
        assertThat(usage.at("/prompt_tokens_details/cached_tokens").asLong()).isEqualTo(expected.cachedPromptTokens());
        assertThat(usage.at("/completion_tokens_details/reasoning_tokens").asLong()).isEqualTo(expected.reasoningTokens());
    }

    @Test
    void plainChatReturnsUsageMatchingUsageFor() throws Exception {
        String body = chat("gpt-4o-mini", "What is metering? [[fake:cached=4]]", ",\"max_tokens\":12");

        HttpResponse<String> response = send(post("/v1/chat/completions", body).build());

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).hasValueSatisfying(v -> assertThat(v).startsWith("application/json"));
        assertThat(response.headers().firstValue("x-request-id")).hasValueSatisfying(v -> assertThat(v).startsWith("req_"));
        assertThat(response.headers().firstValue("openai-processing-ms")).isPresent();
        assertThat(response.headers().firstValue("x-ratelimit-remaining-requests")).isPresent();
        JsonNode json = JSON.readTree(response.body());
        assertThat(json.get("id").asText()).startsWith("chatcmpl-");
        assertThat(json.get("object").asText()).isEqualTo("chat.completion");
        assertThat(json.get("model").asText()).as("OpenAI answers a family name with its dated snapshot").isEqualTo("gpt-4o-mini-2024-07-18");
        assertThat(json.get("service_tier").asText()).isEqualTo("default");
        assertThat(json.at("/choices/0/message/role").asText()).isEqualTo("assistant");
        assertThat(json.at("/choices/0/finish_reason").asText()).isEqualTo("length");
        Usage expected = FakeOpenAi.usageFor("/v1/chat/completions", body);
        assertThat(expected.completionTokens()).isEqualTo(12);
        assertThat(expected.cachedPromptTokens()).isEqualTo(4);
        assertUsage(json.get("usage"), expected);
        assertThat(FakeCall.countTokens(json.at("/choices/0/message/content").asText())).isEqualTo(12);
    }

    @Test
    void everyResponseHasAUniqueRequestIdAndBodyId() throws Exception {
        Set<String> requestIds = new HashSet<>();
        Set<String> bodyIds = new HashSet<>();
        for (int i = 0; i < 20; i++) {
            HttpResponse<String> response = send(post("/v1/chat/completions", chat("gpt-4o", "hi", "")).build());
            requestIds.add(response.headers().firstValue("x-request-id").orElseThrow());
            bodyIds.add(JSON.readTree(response.body()).get("id").asText());
        }
        assertThat(requestIds).hasSize(20);
        assertThat(bodyIds).hasSize(20);
    }

    @Test
    void streamingWithIncludeUsageSendsUsageChunkLastThenDone() throws Exception {
        String body = chat("gpt-5-mini", "stream please [[fake:completion=20]]", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");

        HttpResponse<String> response = send(post("/v1/chat/completions", body).build());

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).hasValueSatisfying(v -> assertThat(v).startsWith("text/event-stream"));
        List<String> data = dataLines(response.body());
        assertThat(data.getLast()).isEqualTo("[DONE]");
        JsonNode usageChunk = JSON.readTree(data.get(data.size() - 2));
        assertThat(usageChunk.get("choices")).isEmpty();
        Usage expected = FakeOpenAi.usageFor("/v1/chat/completions", body);
        assertThat(expected.reasoningTokens()).isEqualTo(5);
        assertUsage(usageChunk.get("usage"), expected);
        List<JsonNode> earlier = new ArrayList<>();
        for (String d : data.subList(0, data.size() - 2)) {
            earlier.add(JSON.readTree(d));
        }
        assertThat(earlier).allSatisfy(chunk -> {
            assertThat(chunk.get("object").asText()).isEqualTo("chat.completion.chunk");
            assertThat(chunk.has("usage")).isTrue();
            assertThat(chunk.get("usage").isNull()).isTrue();
            assertThat(chunk.get("id").asText()).isEqualTo(usageChunk.get("id").asText());
        });
        long contentDeltas = earlier.stream().filter(c -> c.at("/choices/0/delta/content").asText("").length() > 0).count();
        assertThat(contentDeltas).isEqualTo(expected.completionTokens() - expected.reasoningTokens());
        assertThat(earlier.getFirst().at("/choices/0/delta/role").asText()).isEqualTo("assistant");
        assertThat(earlier.getLast().at("/choices/0/finish_reason").asText()).isEqualTo("stop");
    }

    @Test
    void answersNameTheSnapshotAndTheServiceTierLikeOpenAi() throws Exception { // issue 16
        JsonNode flex = JSON.readTree(send(post("/v1/chat/completions",
                chat("gpt-5-mini", "hi", ",\"service_tier\":\"flex\"")).build()).body());
        assertThat(flex.get("model").asText()).isEqualTo("gpt-5-mini-2025-08-07");
        assertThat(flex.get("service_tier").asText()).isEqualTo("flex");
        JsonNode snapshot = JSON.readTree(send(post("/v1/chat/completions",
                chat("gpt-4o-mini-2024-07-18", "hi", ",\"service_tier\":\"auto\"")).build()).body());
        assertThat(snapshot.get("model").asText()).as("a snapshot is answered as asked").isEqualTo("gpt-4o-mini-2024-07-18");
        assertThat(snapshot.get("service_tier").asText()).isEqualTo("default");

        String body = chat("gpt-5", "hi [[fake:tier=priority]]", ",\"service_tier\":\"flex\",\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}");
        List<String> data = dataLines(send(post("/v1/chat/completions", body).build()).body());
        assertThat(data.subList(0, data.size() - 1)).isNotEmpty().allSatisfy(d -> {
            JsonNode chunk = JSON.readTree(d);
            assertThat(chunk.get("model").asText()).isEqualTo("gpt-5-2025-08-07");
            assertThat(chunk.get("service_tier").asText()).as("the directive wins over the request").isEqualTo("priority");
        });
        JsonNode response = JSON.readTree(send(post("/v1/responses",
                "{\"model\":\"o4-mini\",\"input\":\"hi\",\"service_tier\":\"priority\"}").build()).body());
        assertThat(response.get("model").asText()).isEqualTo("o4-mini-2025-04-16");
        assertThat(response.get("service_tier").asText()).isEqualTo("priority");
    }

    @Test
    void streamingWithoutIncludeUsageHasNoUsageAtAll() throws Exception {
        String body = chat("gpt-4o", "stream", ",\"stream\":true");

        HttpResponse<String> response = send(post("/v1/chat/completions", body).build());

        List<String> data = dataLines(response.body());
        assertThat(data.getLast()).isEqualTo("[DONE]");
        assertThat(data).hasSize(1 + 16 + 1 + 1);
        for (String d : data.subList(0, data.size() - 1)) {
            JsonNode chunk = JSON.readTree(d);
            assertThat(chunk.has("usage")).as("usage field in %s", d).isFalse();
            assertThat(chunk.get("choices")).hasSize(1);
        }
    }

    /** Reads an SSE stream line by line until it ends or breaks; records whether it broke. */
    private record Received(List<String> data, Throwable failure) {
    }

    /**
     * Collects every decoded body byte and then the failure, if any. (The JDK's ofInputStream would drop bytes
     * already received once the connection breaks, which would hide how many chunks arrived.)
     */
    private static Received readStream(HttpRequest request) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        CompletableFuture<Throwable> end = new CompletableFuture<>();
        HttpResponse.BodyHandler<Void> collect = HttpResponse.BodyHandlers.fromSubscriber(new Flow.Subscriber<List<ByteBuffer>>() {
            @Override
            public void onSubscribe(Flow.Subscription subscription) {
                subscription.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(List<ByteBuffer> buffers) {
                for (ByteBuffer b : buffers) {
                    byte[] chunk = new byte[b.remaining()];
                    b.get(chunk);
                    bytes.writeBytes(chunk);
                }
            }

            @Override
            public void onError(Throwable throwable) {
                end.complete(throwable);
            }

            @Override
            public void onComplete() {
                end.complete(null);
            }
        });
        try {
            http.send(request, collect);
        } catch (IOException brokenBody) {
            end.complete(brokenBody); // normally onError already did; send() reports the same break
        }
        Throwable failure = end.get(10, TimeUnit.SECONDS);
        return new Received(dataLines(bytes.toString(StandardCharsets.UTF_8)), failure);
    }

    @Test
    void cutAfterDirectiveDropsTheConnectionWithoutUsageOrDone() throws Exception {
        String body = chat("gpt-4o", "cut [[fake:cut-after=3]]", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");

        Received received = readStream(post("/v1/chat/completions", body).build());

        assertThat(received.failure()).as("the stream must break, not end").isNotNull();
        assertThat(received.data()).hasSize(1 + 3);
        assertThat(received.data()).noneMatch(d -> d.equals("[DONE]")).noneMatch(d -> d.contains("\"usage\":{"));
    }

    @Test
    void enqueuedCutStreamAfterAppliesToTheNextStream() throws Exception {
        fake.enqueue(Behavior.cutStreamAfter(0));
        String body = chat("gpt-4o", "cut", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");

        Received cut = readStream(post("/v1/chat/completions", body).build());
        Received whole = readStream(post("/v1/chat/completions", body).build());

        assertThat(cut.failure()).isNotNull();
        assertThat(cut.data()).hasSize(1);
        assertThat(whole.failure()).isNull();
        assertThat(whole.data().getLast()).isEqualTo("[DONE]");
    }

    @Test
    void streamReallyStreamsChunkByChunk() throws Exception {
        Duration delay = Duration.ofMillis(80);
        try (FakeOpenAi slow = FakeOpenAi.builder().streamChunkDelay(delay).build()) {
            String body = chat("gpt-4o", "slow", ",\"stream\":true,\"max_tokens\":6");
            HttpRequest request = HttpRequest.newBuilder(URI.create(slow.baseUrl() + "/v1/chat/completions"))
                    .header("Authorization", "Bearer " + KEY).POST(HttpRequest.BodyPublishers.ofString(body)).build();
            HttpResponse<InputStream> response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
            long firstChunkNanos = 0;
            long doneNanos = 0;
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    if (line.startsWith("data: ") && firstChunkNanos == 0) {
                        firstChunkNanos = System.nanoTime();
                    }
                    if (line.equals("data: [DONE]")) {
                        doneNanos = System.nanoTime();
                    }
                }
            }
            // Six content chunks are each sent after a delay, so the last leaves the fake >= 480 ms after the first.
            assertThat(Duration.ofNanos(doneNanos - firstChunkNanos)).isGreaterThanOrEqualTo(delay.multipliedBy(5));
        }
    }

    @Test
    void firstChunkArrivesWhileTheRestIsStillBeingHeldBack() throws Exception {
        // Each content chunk waits 30 s, so a buffering server could not deliver the first chunk within 5 s.
        try (FakeOpenAi slow = FakeOpenAi.builder().streamChunkDelay(Duration.ofSeconds(30)).build()) {
            HttpRequest request = HttpRequest.newBuilder(URI.create(slow.baseUrl() + "/v1/chat/completions"))
                    .header("Authorization", "Bearer " + KEY)
                    .POST(HttpRequest.BodyPublishers.ofString(chat("gpt-4o", "slow", ",\"stream\":true"))).build();
            HttpResponse<InputStream> response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
            BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
            String firstData = CompletableFuture.supplyAsync(() -> {
                try {
                    String line;
                    while ((line = reader.readLine()) != null && !line.startsWith("data: ")) {
                        // skip blank separators
                    }
                    return line;
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).get(5, TimeUnit.SECONDS);
            assertThat(firstData).contains("\"role\":\"assistant\"");
            response.body().close();
        }
    }

    @Test
    void statusDirectiveGivesOpenAiErrorJson() throws Exception {
        HttpResponse<String> response = send(post("/v1/chat/completions", chat("gpt-4o", "fail [[fake:status=500]]", "")).build());

        assertThat(response.statusCode()).isEqualTo(500);
        assertThat(response.headers().firstValue("x-request-id")).isPresent();
        JsonNode error = JSON.readTree(response.body()).get("error");
        assertThat(error.get("type").asText()).isEqualTo("server_error");
        assertThat(error.get("message").asText()).isNotBlank();
        assertThat(error.has("param")).isTrue();
        assertThat(error.has("code")).isTrue();

        HttpResponse<String> limited = send(post("/v1/chat/completions", chat("gpt-4o", "[[fake:status=429]]", "")).build());
        assertThat(limited.statusCode()).isEqualTo(429);
        assertThat(JSON.readTree(limited.body()).at("/error/code").asText()).isEqualTo("rate_limit_exceeded");
    }

    @Test
    void enqueuedStatusAffectsExactlyTheNextRequest() throws Exception {
        fake.enqueue(Behavior.status(503));
        fake.enqueue(Behavior.status(401));

        HttpResponse<String> first = send(post("/v1/chat/completions", chat("gpt-4o", "a", "")).build());
        HttpResponse<String> second = send(post("/v1/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":\"x\"}").build());
        HttpResponse<String> third = send(post("/v1/chat/completions", chat("gpt-4o", "c", "")).build());

        assertThat(first.statusCode()).isEqualTo(503);
        assertThat(JSON.readTree(first.body()).at("/error/type").asText()).isEqualTo("server_error");
        assertThat(second.statusCode()).isEqualTo(401);
        assertThat(JSON.readTree(second.body()).at("/error/code").asText()).isEqualTo("invalid_api_key");
        assertThat(third.statusCode()).isEqualTo(200);
        assertThat(fake.requestCount()).isEqualTo(3);
    }

    @Test
    void enqueuedOkWinsOverTheRequestsStatusDirectiveAndResetForgetsTheQueue() throws Exception {
        fake.enqueue(Behavior.ok());
        String failing = chat("gpt-4o", "[[fake:status=500]]", "");

        assertThat(send(post("/v1/chat/completions", failing).build()).statusCode()).isEqualTo(200);
        assertThat(send(post("/v1/chat/completions", failing).build()).statusCode()).isEqualTo(500);

        fake.enqueue(Behavior.status(503));
        fake.reset();
        assertThat(send(post("/v1/chat/completions", chat("gpt-4o", "fine", "")).build()).statusCode()).isEqualTo(200);
        assertThat(fake.requestCount()).isEqualTo(1);
        assertThat(fake.requests()).hasSize(1);
    }

    @Test
    void hangMakesAClientWithA500msTimeoutTimeOut() throws Exception {
        fake.enqueue(Behavior.hang(Duration.ofSeconds(3)));
        HttpRequest request = post("/v1/chat/completions", chat("gpt-4o", "hang", "")).timeout(Duration.ofMillis(500)).build();

        long start = System.nanoTime();
        assertThatThrownBy(() -> send(request)).isInstanceOf(HttpTimeoutException.class);
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(3));

        assertThat(send(post("/v1/chat/completions", chat("gpt-4o", "after", "")).build()).statusCode()).isEqualTo(200);
    }

    @Test
    void hangDirectiveDropsTheConnectionWhenItsTimeIsUp() throws Exception {
        HttpRequest request = post("/v1/chat/completions", chat("gpt-4o", "[[fake:hang=200ms]]", "")).build();

        assertThatThrownBy(() -> send(request)).isInstanceOf(IOException.class).isNotInstanceOf(HttpTimeoutException.class);
    }

    @Test
    void latencyDelaysTheAnswer() throws Exception {
        fake.enqueue(Behavior.latency(Duration.ofMillis(300)));
        long start = System.nanoTime();
        assertThat(send(post("/v1/chat/completions", chat("gpt-4o", "slow", "")).build()).statusCode()).isEqualTo(200);
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(300));

        start = System.nanoTime();
        assertThat(send(post("/v1/chat/completions", chat("gpt-4o", "slow [[fake:latency=250ms]]", "")).build()).statusCode())
                .isEqualTo(200);
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(250));
    }

    @Test
    void embeddingsReportInputTokensAndDeterministicVectors() throws Exception {
        String body = "{\"model\":\"text-embedding-3-small\",\"input\":[\"the quick brown fox\",\"jumps\"]}";

        JsonNode first = JSON.readTree(send(post("/v1/embeddings", body).build()).body());
        JsonNode again = JSON.readTree(send(post("/v1/embeddings", body).build()).body());

        assertThat(first.get("object").asText()).isEqualTo("list");
        assertThat(first.get("data")).hasSize(2);
        assertThat(first.at("/data/0/embedding")).hasSize(8);
        assertThat(first.at("/data/1/index").asInt()).isEqualTo(1);
        assertThat(first.get("data")).isEqualTo(again.get("data"));
        assertThat(first.at("/data/0/embedding")).isNotEqualTo(first.at("/data/1/embedding"));
        long expected = FakeOpenAi.usageFor("/v1/embeddings", body).promptTokens();
        assertThat(expected).isEqualTo(FakeCall.countTokens("the quick brown fox") + FakeCall.countTokens("jumps"));
        assertThat(first.at("/usage/prompt_tokens").asLong()).isEqualTo(expected);
        assertThat(first.at("/usage/total_tokens").asLong()).isEqualTo(expected);
    }

    @Test
    void embeddingsInBase64AsThePythonSdkAsksByDefault() throws Exception {
        String body = "{\"model\":\"text-embedding-3-small\",\"input\":\"hello\",\"encoding_format\":\"base64\",\"dimensions\":4}";

        JsonNode json = JSON.readTree(send(post("/v1/embeddings", body).build()).body());

        byte[] raw = Base64.getDecoder().decode(json.at("/data/0/embedding").asText());
        assertThat(raw).hasSize(16);
        ByteBuffer floats = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        double norm = 0;
        for (int i = 0; i < 4; i++) {
            float f = floats.getFloat();
            norm += f * f;
        }
        assertThat(norm).isBetween(0.999, 1.001);
    }

    @Test
    void legacyCompletionsReportUsage() throws Exception {
        String body = "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Say this is a test\",\"max_tokens\":7}";

        JsonNode json = JSON.readTree(send(post("/v1/completions", body).build()).body());

        assertThat(json.get("object").asText()).isEqualTo("text_completion");
        assertThat(json.get("id").asText()).startsWith("cmpl-");
        Usage expected = FakeOpenAi.usageFor("/v1/completions", body);
        assertThat(json.at("/usage/prompt_tokens").asLong()).isEqualTo(expected.promptTokens());
        assertThat(json.at("/usage/completion_tokens").asLong()).isEqualTo(7);
        assertThat(FakeCall.countTokens(json.at("/choices/0/text").asText())).isEqualTo(7);
    }

    @Test
    void responsesApiReportsUsageInBothModes() throws Exception {
        String body = "{\"model\":\"gpt-5\",\"instructions\":\"Be brief.\",\"input\":\"Tell me a joke [[fake:completion=12]]\"}";
        Usage expected = FakeOpenAi.usageFor("/v1/responses", body);

        JsonNode plain = JSON.readTree(send(post("/v1/responses", body).build()).body());
        assertThat(plain.get("object").asText()).isEqualTo("response");
        assertThat(plain.get("id").asText()).startsWith("resp_");
        assertThat(plain.get("status").asText()).isEqualTo("completed");
        assertThat(plain.at("/output/0/content/0/type").asText()).isEqualTo("output_text");
        assertThat(plain.at("/usage/input_tokens").asLong()).isEqualTo(expected.promptTokens());
        assertThat(plain.at("/usage/output_tokens").asLong()).isEqualTo(12);
        assertThat(plain.at("/usage/output_tokens_details/reasoning_tokens").asLong()).isEqualTo(3);
        assertThat(plain.at("/usage/total_tokens").asLong()).isEqualTo(expected.totalTokens());

        String streamed = send(post("/v1/responses", body.replace("{\"model\"", "{\"stream\":true,\"model\"")).build()).body();
        List<String> events = new ArrayList<>();
        for (String line : streamed.split("\n")) {
            if (line.startsWith("event: ")) {
                events.add(line.substring(7));
            }
        }
        assertThat(events.getFirst()).isEqualTo("response.created");
        assertThat(events.getLast()).isEqualTo("response.completed");
        assertThat(events.stream().filter("response.output_text.delta"::equals).count()).isEqualTo(12 - 3);
        List<String> data = dataLines(streamed);
        JsonNode completed = JSON.readTree(data.getLast());
        assertThat(completed.at("/response/usage/output_tokens").asLong()).isEqualTo(12);
        assertThat(completed.get("sequence_number").asInt()).isEqualTo(data.size() - 1);
        assertThat(data).doesNotContain("[DONE]");
    }

    @Test
    void legacyCompletionsStreamWithUsageChunk() throws Exception {
        String body = "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Say\",\"max_tokens\":4,\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}}";

        List<String> data = dataLines(send(post("/v1/completions", body).build()).body());

        assertThat(data.getLast()).isEqualTo("[DONE]");
        assertThat(data).hasSize(4 + 1 + 1 + 1);
        JsonNode usageChunk = JSON.readTree(data.get(data.size() - 2));
        assertThat(usageChunk.get("choices")).isEmpty();
        assertThat(usageChunk.at("/usage/completion_tokens").asLong()).isEqualTo(4);
        assertThat(usageChunk.at("/usage/prompt_tokens").asLong()).isEqualTo(FakeOpenAi.usageFor("/v1/completions", body).promptTokens());
        assertThat(JSON.readTree(data.getFirst()).get("object").asText()).isEqualTo("text_completion");
    }

    @Test
    void responsesCutShortByMaxOutputTokensAreIncompleteAsAtOpenAi() throws Exception {
        String body = "{\"model\":\"gpt-4.1\",\"input\":\"long story\",\"max_output_tokens\":5}";

        JsonNode plain = JSON.readTree(send(post("/v1/responses", body).build()).body());
        assertThat(plain.get("status").asText()).isEqualTo("incomplete");
        assertThat(plain.at("/incomplete_details/reason").asText()).isEqualTo("max_output_tokens");
        assertThat(plain.at("/usage/output_tokens").asLong()).isEqualTo(5);

        String streamed = send(post("/v1/responses", body.replace("{\"model\"", "{\"stream\":true,\"model\"")).build()).body();
        assertThat(streamed).doesNotContain("event: response.completed");
        List<String> data = dataLines(streamed);
        JsonNode last = JSON.readTree(data.getLast());
        assertThat(last.get("type").asText()).isEqualTo("response.incomplete");
        assertThat(last.at("/response/usage/output_tokens").asLong()).isEqualTo(5);
    }

    @Test
    void modelsAreListed() throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/models"))
                .header("Authorization", "Bearer " + KEY).GET().build();

        JsonNode json = JSON.readTree(send(request).body());

        assertThat(json.get("object").asText()).isEqualTo("list");
        assertThat(json.get("data").findValuesAsText("id")).contains("gpt-4o-mini", "text-embedding-3-small");
    }

    @Test
    void recordedRequestsCaptureMethodPathAuthorizationAndBody() throws Exception {
        String body = chat("gpt-4o", "record me", "");
        send(post("/v1/chat/completions", body).build());

        assertThat(fake.requests()).singleElement().satisfies(r -> {
            assertThat(r.method()).isEqualTo("POST");
            assertThat(r.path()).isEqualTo("/v1/chat/completions");
            assertThat(r.headers().get("authorization")).isEqualTo("Bearer " + KEY);
            assertThat(r.header("Authorization")).isEqualTo("Bearer " + KEY);
            assertThat(r.body()).isEqualTo(body);
        });
    }

    @Test
    void missingAuthorizationGives401AndBadJsonGives400() throws Exception {
        HttpRequest noAuth = HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(chat("gpt-4o", "x", ""))).build();
        HttpResponse<String> unauthorized = send(noAuth);
        assertThat(unauthorized.statusCode()).isEqualTo(401);
        assertThat(JSON.readTree(unauthorized.body()).at("/error/type").asText()).isEqualTo("invalid_request_error");

        HttpResponse<String> badJson = send(post("/v1/chat/completions", "{not json").build());
        assertThat(badJson.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(badJson.body()).at("/error/type").asText()).isEqualTo("invalid_request_error");

        HttpResponse<String> noMessages = send(post("/v1/chat/completions", "{\"model\":\"gpt-4o\"}").build());
        assertThat(noMessages.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(noMessages.body()).at("/error/param").asText()).isEqualTo("messages");

        HttpResponse<String> unknown = send(post("/v1/nothing", "{}").build());
        assertThat(unknown.statusCode()).isEqualTo(404);
        assertThat(JSON.readTree(unknown.body()).at("/error/message").asText()).isEqualTo("Invalid URL (POST /v1/nothing)");
    }

    @Test
    void failureRateIsSeededAndRepeatable() throws Exception {
        List<Integer> runA = statusesWithFailureRate(0.5, 42);
        List<Integer> runB = statusesWithFailureRate(0.5, 42);
        assertThat(runA).isEqualTo(runB).contains(200, 500);
    }

    private static List<Integer> statusesWithFailureRate(double rate, long seed) throws Exception {
        List<Integer> statuses = new ArrayList<>();
        try (FakeOpenAi flaky = FakeOpenAi.builder().failureRate(rate, seed).build()) {
            for (int i = 0; i < 30; i++) {
                HttpRequest request = HttpRequest.newBuilder(URI.create(flaky.baseUrl() + "/v1/chat/completions"))
                        .header("Authorization", "Bearer " + KEY)
                        .POST(HttpRequest.BodyPublishers.ofString(chat("gpt-4o", "x", ""))).build();
                statuses.add(send(request).statusCode());
            }
        }
        return statuses;
    }

    @Test
    void servesSeveralHundredConcurrentRequests() throws Exception {
        int n = 300;
        List<CompletableFuture<HttpResponse<String>>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            futures.add(http.sendAsync(post("/v1/chat/completions", chat("gpt-4o", "c" + i, ",\"stream\":" + (i % 2 == 0))).build(),
                    HttpResponse.BodyHandlers.ofString()));
        }
        CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).get(20, TimeUnit.SECONDS);
        assertThat(futures).allSatisfy(f -> assertThat(f.join().statusCode()).isEqualTo(200));
        assertThat(fake.requestCount()).isEqualTo(n);
    }
}
