package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.edge.proxy.batch.BatchBilling;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 16's Batch API through the edge (ADR 0087), on the real engines and the fake upstream's Batch API on a
 * compressed clock: upload → create (reserved under the batch's name) → poll to its end → one SUCCEEDED event per
 * answered line at the batch price (an odd cached count rounded once, half to even), the reservation settled to their
 * sum; a second read bills nothing more; a cancelled batch bills nothing and gives its reservation back; a bad input
 * line is a 400 with nothing upstream; a batch over the credit is cancelled upstream and answered 429; another user
 * sees none of it.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BatchApiIT {

    private static final ObjectMapper JSON = new ObjectMapper();

    private FakeOpenAi openAi;
    private EdgeTestBed bed;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.builder().batchStep(Duration.ofSeconds(1)).build();
        // The poller reads open batches every 500 ms: a batch is billed whether its caller reads it or not.
        bed = new EdgeTestBed(engines, openAi, Map.of("BATCH_POLL_INTERVAL", "500ms"));
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private static String line(String customId, String text) {
        return "{\"custom_id\":\"" + customId + "\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":"
                + "{\"model\":\"gpt-4o-mini\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}}";
    }

    private HttpResponse<String> upload(User user, String jsonl) throws Exception {
        String boundary = "----tmBatch" + UUID.randomUUID().toString().replace("-", "");
        String body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" + boundary
                + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n"
                + jsonl + "\r\n--" + boundary + "--\r\n";
        return bed.client.send(HttpRequest.newBuilder(URI.create(bed.baseUrl() + "/v1/files")).timeout(Duration.ofSeconds(30))
                .header("Authorization", "Bearer " + user.key()).header("Content-Type", "multipart/form-data; boundary=" + boundary)
                .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> send(User user, String method, String path, String json) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(bed.baseUrl() + path)).timeout(Duration.ofSeconds(30))
                .header("Authorization", "Bearer " + user.key());
        if (json == null) {
            b.method(method, HttpRequest.BodyPublishers.noBody());
        } else {
            b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(json));
        }
        return bed.client.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private JsonNode ok(HttpResponse<String> r) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    private String uploadOk(User user, String jsonl) throws Exception {
        return ok(upload(user, jsonl)).path("id").asText();
    }

    private HttpResponse<String> create(User user, String fileId) throws Exception {
        return send(user, "POST", "/v1/batches", "{\"input_file_id\":\"" + fileId
                + "\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}");
    }

    private JsonNode awaitStatus(User user, String batchId, String status) {
        AtomicReference<JsonNode> last = new AtomicReference<>();
        await("batch " + batchId + " " + status).atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(100)).until(() -> {
            last.set(ok(send(user, "GET", "/v1/batches/" + batchId, null)));
            return last.get().path("status").asText().equals(status);
        });
        return last.get();
    }

    /** gpt-4o-mini's batch row (V35): 150 / 75 / 600 nano-USD per 2 tokens, one half-to-even rounding per line. */
    private static long batchCost(UsageEvent e) {
        long twice = (e.getPromptTokens() - e.getCachedPromptTokens()) * 150 + e.getCachedPromptTokens() * 75
                + e.getCompletionTokens() * 600;
        return twice / 2 + (twice % 2 == 1 && (twice / 2) % 2 == 1 ? 1 : 0);
    }

    @Test
    void aCompletedBatch_billsEachAnsweredLineOnceAtTheBatchPrice_andSettlesItsReservationToTheSum() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String jsonl = line("a", "Name three rivers. [[fake:cached=3]]") + "\n" + line("b", "Say hi.") + "\n"
                + line("c", "fail [[fake:status=500]]") + "\n";
        String fileId = uploadOk(user, jsonl);
        assertThat(ok(send(user, "GET", "/v1/files/" + fileId, null)).path("purpose").asText()).isEqualTo("batch");
        assertThat(send(user, "GET", "/v1/files/" + fileId + "/content", null).body()).isEqualTo(jsonl);

        JsonNode created = ok(create(user, fileId));
        String batchId = created.path("id").asText();
        assertThat(created.path("status").asText()).isEqualTo("validating");
        long reserved = bed.reservedNanoUsd(user.userId());
        // Three lines of at most 50 completion tokens each at 300 nano-USD: the estimate is held, and is positive.
        assertThat(reserved).as("the batch's estimate is reserved").isGreaterThan(3 * 50 * 300);

        JsonNode done = awaitStatus(user, batchId, "completed");
        assertThat(done.path("request_counts").path("completed").asInt()).isEqualTo(2);
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(20));
        assertThat(events).extracting(UsageEvent::getEventId).containsExactlyInAnyOrder(
                BatchBilling.eventId(batchId, "a"), BatchBilling.eventId(batchId, "b"));
        for (UsageEvent e : events) {
            assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
            assertThat(e.getServiceTier()).isEqualTo("batch");
            assertThat(e.getPriceVersion()).isEqualTo("gpt-4o-mini@2024-07-18:batch");
            assertThat(e.getKeySource()).isEqualTo(KeySource.SERVICE_CREDIT);
            assertThat(e.getModel()).isEqualTo("gpt-4o-mini");
            assertThat(e.getAttributes()).containsEntry("batch_id", batchId);
            assertThat(e.getReservationId()).as("the reservation is named after the batch")
                    .startsWith("{u:" + user.userId() + "}:").endsWith(":" + BatchBilling.reservationId(batchId));
            assertThat(e.getCostNanoUsd()).as(e.getEventId()).isEqualTo(batchCost(e)).isPositive();
        }
        UsageEvent a = events.stream().filter(e -> e.getEventId().equals(BatchBilling.eventId(batchId, "a"))).findFirst().orElseThrow();
        assertThat(a.getCachedPromptTokens()).as("an odd cached count: its exact half cost is fractional").isEqualTo(3);
        long sum = events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum();
        await("reservation settled to the sum").atMost(Duration.ofSeconds(10))
                .until(() -> bed.reservedNanoUsd(user.userId()) == 0 && bed.usedNanoUsd(user.userId()) == sum);

        // Read again (retrieve and list): nothing more is billed. A sync call after them fences the topic.
        assertThat(ok(send(user, "GET", "/v1/batches/" + batchId, null)).path("status").asText()).isEqualTo("completed");
        JsonNode list = ok(send(user, "GET", "/v1/batches?limit=5", null));
        assertThat(list.path("data")).extracting(n -> n.path("id").asText()).contains(batchId);
        assertThat(bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "fence")).statusCode()).isEqualTo(200);
        List<UsageEvent> after = bed.awaitEvents(user.userId(), 3, Duration.ofSeconds(20));
        assertThat(after).hasSize(3);
        assertThat(after.stream().filter(e -> "batch".equals(e.getServiceTier())).map(UsageEvent::getEventId).distinct().count())
                .isEqualTo(2);
        assertThat(bed.reservedNanoUsd(user.userId())).isZero();
        // The output file is the user's own now; another user sees neither it nor the batch.
        String outputFileId = done.path("output_file_id").asText();
        assertThat(send(user, "GET", "/v1/files/" + outputFileId + "/content", null).body()).contains("\"custom_id\":\"a\"");
        User other = bed.newUser(Money.usd(5));
        assertThat(send(other, "GET", "/v1/batches/" + batchId, null).statusCode()).isEqualTo(404);
        assertThat(send(other, "GET", "/v1/files/" + fileId + "/content", null).statusCode()).isEqualTo(404);
        assertThat(send(other, "GET", "/v1/files/" + outputFileId, null).statusCode()).isEqualTo(404);
        assertThat(create(other, fileId).statusCode()).isEqualTo(404);
        assertThat(ok(send(other, "GET", "/v1/batches", null)).path("data")).isEmpty();
    }

    @Test
    void aBatchNobodyReads_isBilledByThePoller() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String batchId = ok(create(user, uploadOk(user, line("a", "unread [[fake:cached=5]]") + "\n"))).path("id").asText();
        UsageEvent e = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(30)).getFirst();
        assertThat(e.getEventId()).isEqualTo(BatchBilling.eventId(batchId, "a"));
        assertThat(e.getCachedPromptTokens()).isEqualTo(5);
        assertThat(e.getCostNanoUsd()).isEqualTo(batchCost(e));
        await("reservation settled by the poller").atMost(Duration.ofSeconds(10))
                .until(() -> bed.reservedNanoUsd(user.userId()) == 0 && bed.usedNanoUsd(user.userId()) == e.getCostNanoUsd());
    }

    @Test
    void aCancelledBatch_billsNothing_andReleasesItsReservation() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String batchId = ok(create(user, uploadOk(user, line("a", "hello") + "\n"))).path("id").asText();
        assertThat(bed.reservedNanoUsd(user.userId())).isPositive();
        assertThat(ok(send(user, "POST", "/v1/batches/" + batchId + "/cancel", null)).path("status").asText()).isEqualTo("cancelling");
        awaitStatus(user, batchId, "cancelled");
        await("reservation released").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isZero();
        assertThat(bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "fence")).statusCode()).isEqualTo(200);
        assertThat(bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20))).singleElement()
                .satisfies(e -> assertThat(e.getServiceTier()).isNotEqualTo("batch"));
    }

    @Test
    void aBadInputLine_is400NamingTheLine_andNothingGoesUpstream() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String marker = "bad-file-" + UUID.randomUUID();
        HttpResponse<String> r = upload(user, line("a", marker) + "\n{\"custom_id\":\"b\",\"method\":\"GET\"}\n");
        assertThat(r.statusCode()).isEqualTo(400);
        JsonNode error = JSON.readTree(r.body()).path("error");
        assertThat(error.path("code").asText()).isEqualTo("invalid_batch_line");
        assertThat(error.path("param").asText()).isEqualTo("file");
        assertThat(error.path("message").asText()).contains("Line 2");
        HttpResponse<String> notMultipart = send(user, "POST", "/v1/files", "{\"marker\":\"" + marker + "\"}");
        assertThat(notMultipart.statusCode()).isEqualTo(400);
        assertThat(openAi.requests()).as("nothing went upstream").noneMatch(q -> q.body().contains(marker));
    }

    @Test
    void aBatchOverTheCredit_isCancelledUpstreamAndAnswered429() throws Exception {
        User user = bed.newUser(1_000); // 1,000 nano-USD: less than any batch line's estimate
        String fileId = uploadOk(user, line("a", "too dear") + "\n");
        int before = openAi.requests().size();
        HttpResponse<String> r = create(user, fileId);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(429);
        assertThat(JSON.readTree(r.body()).path("error").path("code").asText()).isEqualTo("insufficient_quota");
        assertThat(openAi.requests().subList(before, openAi.requests().size())).as("the created batch was cancelled upstream at once")
                .anyMatch(q -> q.method().equals("POST") && q.path().startsWith("/v1/batches/") && q.path().endsWith("/cancel"));
        assertThat(bed.reservedNanoUsd(user.userId())).isZero();
        assertThat(ok(send(user, "GET", "/v1/batches", null)).path("data")).isEmpty();
        assertThat(bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20))).singleElement()
                .satisfies(e -> assertThat(e.getOutcome()).isEqualTo(Outcome.REJECTED));
    }
}
