package dev.tokenmeter.testkit.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The fake's Files and Batch APIs (issue 16): upload, the life cycle on a compressed clock, output lines, usage. */
class FakeBatchApiTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String KEY = "sk-batch-test";
    private static FakeOpenAi fake;
    private static HttpClient http;

    @BeforeAll
    static void start() {
        fake = FakeOpenAi.builder().batchStep(Duration.ofMillis(300)).build();
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

    static String line(String customId, String userText) {
        return "{\"custom_id\":\"" + customId + "\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":"
                + "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" + userText + "\"}]}}";
    }

    private static HttpResponse<String> upload(String key, String purpose, String jsonl) throws Exception {
        String boundary = "----tokenmeter" + System.nanoTime();
        String body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n" + purpose + "\r\n"
                + "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n"
                + "Content-Type: application/jsonl\r\n\r\n" + jsonl + "\r\n--" + boundary + "--\r\n";
        return http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/files"))
                .header("Authorization", "Bearer " + key)
                .header("Content-Type", "multipart/form-data; boundary=" + boundary)
                .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> send(String method, String path, String json) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(fake.baseUrl() + path)).header("Authorization", "Bearer " + KEY);
        if (json != null) {
            b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(json));
        } else {
            b.method(method, HttpRequest.BodyPublishers.noBody());
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static JsonNode ok(HttpResponse<String> r) throws IOException {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    private static JsonNode createBatch(String jsonl) throws Exception {
        String fileId = ok(upload(KEY, "batch", jsonl)).path("id").asText();
        return ok(send("POST", "/v1/batches", "{\"input_file_id\":\"" + fileId
                + "\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\",\"metadata\":{\"job\":\"t\"}}"));
    }

    private static JsonNode awaitStatus(String batchId, String status) {
        AtomicReference<JsonNode> last = new AtomicReference<>();
        await("batch " + batchId + " reaches " + status).atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(50))
                .until(() -> {
                    last.set(ok(send("GET", "/v1/batches/" + batchId, null)));
                    return last.get().path("status").asText().equals(status);
                });
        return last.get();
    }

    private static List<JsonNode> lines(String fileId) throws Exception {
        HttpResponse<String> r = send("GET", "/v1/files/" + fileId + "/content", null);
        assertThat(r.statusCode()).isEqualTo(200);
        List<JsonNode> out = new ArrayList<>();
        for (String l : r.body().split("\n")) {
            if (!l.isBlank()) {
                out.add(JSON.readTree(l));
            }
        }
        return out;
    }

    @Test
    void batchRunsValidatingInProgressCompletedAndItsLinesAreBilledAtHalfPrice() throws Exception {
        long start = System.currentTimeMillis() / 1000 - 60;
        String jsonl = line("a", "Say one thing. [[fake:cached=3]]") + "\n" + line("b", "Say two things please.") + "\n"
                + line("c", "fail me [[fake:status=500]]") + "\n";
        JsonNode created = createBatch(jsonl);
        assertThat(created.path("object").asText()).isEqualTo("batch");
        assertThat(created.path("status").asText()).isEqualTo("validating");
        assertThat(created.path("metadata").path("job").asText()).isEqualTo("t");
        String id = created.path("id").asText();
        assertThat(id).startsWith("batch_");

        awaitStatus(id, "in_progress");
        JsonNode done = awaitStatus(id, "completed");
        assertThat(done.path("request_counts").path("total").asInt()).isEqualTo(3);
        assertThat(done.path("request_counts").path("completed").asInt()).isEqualTo(2);
        assertThat(done.path("request_counts").path("failed").asInt()).isEqualTo(1);
        assertThat(done.path("completed_at").isNumber()).isTrue();

        List<JsonNode> out = lines(done.path("output_file_id").asText());
        assertThat(out).extracting(l -> l.path("custom_id").asText()).containsExactly("a", "b");
        long expectedNano = 0;
        long prompt = 0;
        for (JsonNode l : out) {
            assertThat(l.path("id").asText()).startsWith("batch_req_");
            assertThat(l.path("error").isNull()).isTrue();
            assertThat(l.path("response").path("status_code").asInt()).isEqualTo(200);
            JsonNode body = l.path("response").path("body");
            assertThat(body.path("object").asText()).isEqualTo("chat.completion");
            Usage u = FakeOpenAi.usageFor("/v1/chat/completions", JSON.readTree(line(l.path("custom_id").asText(),
                    l.path("custom_id").asText().equals("a") ? "Say one thing. [[fake:cached=3]]" : "Say two things please."))
                    .path("body").toString());
            assertThat(body.path("usage").path("prompt_tokens").asLong()).isEqualTo(u.promptTokens());
            assertThat(body.path("usage").path("completion_tokens").asLong()).isEqualTo(u.completionTokens());
            prompt += u.promptTokens();
            // gpt-4o-mini standard 150 / 75 / 600 nano-USD per token; batch is half, 37.5 per cached token: each line's
            // sum is halved once and rounded half to even (ADR 0087), so line a's 3 cached tokens (112.5) are not floored.
            long twice = (u.promptTokens() - u.cachedPromptTokens()) * 150 + u.cachedPromptTokens() * 75 + u.completionTokens() * 600;
            expectedNano += twice / 2 + (twice % 2 == 1 && (twice / 2) % 2 == 1 ? 1 : 0);
            if (l.path("custom_id").asText().equals("a")) {
                assertThat(u.cachedPromptTokens()).isEqualTo(3);
                assertThat(body.path("usage").path("prompt_tokens_details").path("cached_tokens").asLong()).isEqualTo(3);
                assertThat(twice % 2).as("line a's exact half is fractional").isEqualTo(1);
            }
        }
        List<JsonNode> err = lines(done.path("error_file_id").asText());
        assertThat(err).singleElement().satisfies(l -> {
            assertThat(l.path("custom_id").asText()).isEqualTo("c");
            assertThat(l.path("response").path("status_code").asInt()).isEqualTo(500);
        });

        // The Usage API counts the two answered lines with batch = true; the Costs API at the batch price.
        JsonNode usage = adminGet("/v1/organization/usage/completions?start_time=" + start + "&bucket_width=1d&group_by=batch");
        long requests = 0;
        long input = 0;
        for (JsonNode b : usage.path("data")) {
            for (JsonNode r : b.path("results")) {
                assertThat(r.path("batch").asBoolean()).isTrue();
                requests += r.path("num_model_requests").asLong();
                input += r.path("input_tokens").asLong();
            }
        }
        assertThat(requests).isEqualTo(2);
        assertThat(input).isEqualTo(prompt);
        long nano = 0;
        for (JsonNode b : adminGet("/v1/organization/costs?start_time=" + start + "&group_by=line_item").path("data")) {
            for (JsonNode r : b.path("results")) {
                // A float, as OpenAI's: its nearest whole nano-USD is the exact cost.
                nano += r.path("amount").path("value").decimalValue().movePointRight(9)
                        .setScale(0, java.math.RoundingMode.HALF_EVEN).longValueExact();
            }
        }
        assertThat(nano).isEqualTo(expectedNano);

        // A second read changes nothing: the lines were answered once.
        awaitStatus(id, "completed");
        assertThat(adminGet("/v1/organization/usage/completions?start_time=" + start + "&bucket_width=1d")
                .path("data").findValues("num_model_requests").stream().mapToLong(JsonNode::asLong).sum()).isEqualTo(2);
    }

    @Test
    void cancelledBatchAnswersNoLineAndCancellingACompletedOneIsRefused() throws Exception {
        String id = createBatch(line("a", "hello") + "\n").path("id").asText();
        JsonNode cancelling = ok(send("POST", "/v1/batches/" + id + "/cancel", null));
        assertThat(cancelling.path("status").asText()).isEqualTo("cancelling");
        JsonNode cancelled = awaitStatus(id, "cancelled");
        assertThat(cancelled.path("output_file_id").isNull()).isTrue();
        assertThat(cancelled.path("request_counts").path("completed").asInt()).isZero();
        HttpResponse<String> again = send("POST", "/v1/batches/" + id + "/cancel", null);
        assertThat(again.statusCode()).isEqualTo(400);
        assertThat(JSON.readTree(again.body()).path("error").path("message").asText()).contains("cancelled");
    }

    @Test
    void expiredBatchPutsEveryLineInTheErrorFile() throws Exception {
        fake.expireNextBatch();
        String id = createBatch(line("a", "hello") + "\n" + line("b", "there") + "\n").path("id").asText();
        JsonNode expired = awaitStatus(id, "expired");
        assertThat(expired.path("output_file_id").isNull()).isTrue();
        assertThat(lines(expired.path("error_file_id").asText())).extracting(l -> l.path("error").path("code").asText())
                .containsExactly("batch_expired", "batch_expired");
    }

    @Test
    void badLinesFailTheBatchAtValidationAndBadRequestsAre400() throws Exception {
        JsonNode failed = createBatch(line("a", "hi") + "\nnot json\n" + line("a", "dup") + "\n");
        assertThat(failed.path("status").asText()).isEqualTo("failed");
        assertThat(failed.path("errors").path("data")).extracting(e -> e.path("line").asInt()).containsExactly(2, 3);

        assertThat(upload(KEY, "nonsense", line("a", "x")).statusCode()).isEqualTo(400);
        assertThat(send("POST", "/v1/files", "{}").statusCode()).isEqualTo(400);
        assertThat(send("POST", "/v1/batches", "{\"input_file_id\":\"file-nope\",\"endpoint\":\"/v1/chat/completions\","
                + "\"completion_window\":\"24h\"}").statusCode()).isEqualTo(404);
        String fileId = ok(upload(KEY, "batch", line("a", "x"))).path("id").asText();
        assertThat(send("POST", "/v1/batches", "{\"input_file_id\":\"" + fileId + "\",\"endpoint\":\"/v1/chat/completions\","
                + "\"completion_window\":\"1h\"}").statusCode()).isEqualTo(400);
        // Another key sees neither the file nor the batch.
        assertThat(http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/files/" + fileId))
                .header("Authorization", "Bearer sk-someone-else").build(), HttpResponse.BodyHandlers.ofString()).statusCode())
                .isEqualTo(404);
    }

    @Test
    void listPagesNewestFirst() throws Exception {
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            ids.add(createBatch(line("a", "n" + i) + "\n").path("id").asText());
        }
        JsonNode first = ok(send("GET", "/v1/batches?limit=2", null));
        assertThat(first.path("data")).extracting(b -> b.path("id").asText()).containsExactly(ids.get(2), ids.get(1));
        assertThat(first.path("has_more").asBoolean()).isTrue();
        JsonNode second = ok(send("GET", "/v1/batches?limit=2&after=" + first.path("last_id").asText(), null));
        assertThat(second.path("data")).extracting(b -> b.path("id").asText()).containsExactly(ids.get(0));
        assertThat(second.path("has_more").asBoolean()).isFalse();
        assertThat(send("GET", "/v1/batches?limit=0", null).statusCode()).isEqualTo(400);
    }

    private static JsonNode adminGet(String path) throws Exception {
        return ok(http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + path))
                .header("Authorization", "Bearer " + fake.adminKey()).build(), HttpResponse.BodyHandlers.ofString()));
    }
}
