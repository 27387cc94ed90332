package dev.tokenmeter.edge.proxy.batch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceCard;
import dev.tokenmeter.edge.pricing.ServiceTier;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The batch billing core reads what the fake upstream's Batch API writes (issue 16, ADR 0087): a batch run end to
 * end on the fake, its output file billed by {@link BatchBilling}, equals the fake's own Costs API to the nano-USD,
 * and a second read of the output bills the same event ids.
 */
class BatchOutputWireIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String KEY = "sk-batch-wire";
    /** gpt-4o-mini's batch row as V35 seeds it: the standard 150 / 75 / 600 per 2 tokens (37.5 per cached token). */
    private static final ModelPrice MINI_BATCH = new ModelPrice("gpt-4o-mini", ServiceTier.BATCH,
            Instant.parse("2024-07-18T00:00:00Z"), 150, 75L, 600L, "gpt-4o-mini@2024-07-18:batch", null, 2);
    private static final PriceCard CARD = (model, tier, at) -> tier == ServiceTier.BATCH && model.startsWith("gpt-4o-mini")
            ? Optional.of(MINI_BATCH) : Optional.empty();

    @Test
    void outputFileOfARealRunBillsLikeTheUpstreamsCostsApi() throws Exception {
        try (FakeOpenAi fake = FakeOpenAi.builder().batchStep(Duration.ofMillis(100)).build();
             HttpClient http = HttpClient.newHttpClient()) {
            long start = System.currentTimeMillis() / 1000 - 60;
            String input = BatchInputTest.line("a", "gpt-4o-mini").replace("\"hi\"", "\"Name three rivers. [[fake:cached=3]]\"") + "\n"
                    + BatchInputTest.line("b", "gpt-4o-mini") + "\n"
                    + BatchInputTest.line("c", "gpt-4o-mini").replace("\"hi\"", "\"fail [[fake:status=500]]\"") + "\n";
            List<BatchInput.Line> lines = BatchInput.parse(input.getBytes(StandardCharsets.UTF_8), 1 << 20, 100);
            Map<String, String> requested = new HashMap<>();
            lines.forEach(l -> requested.put(l.customId(), l.model()));

            String boundary = "b" + System.nanoTime();
            String multipart = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" + boundary
                    + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n" + input + "\r\n--" + boundary + "--\r\n";
            JsonNode file = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/files"))
                    .header("Authorization", "Bearer " + KEY).header("Content-Type", "multipart/form-data; boundary=" + boundary)
                    .POST(HttpRequest.BodyPublishers.ofString(multipart)).build(), HttpResponse.BodyHandlers.ofString()).body());
            JsonNode batch = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/batches"))
                    .header("Authorization", "Bearer " + KEY).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"input_file_id\":\"" + file.path("id").asText()
                            + "\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}")).build(),
                    HttpResponse.BodyHandlers.ofString()).body());
            String batchId = batch.path("id").asText();
            AtomicReference<JsonNode> done = new AtomicReference<>();
            await("batch " + batchId + " completes").atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(50)).until(() -> {
                done.set(JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/batches/" + batchId))
                        .header("Authorization", "Bearer " + KEY).build(), HttpResponse.BodyHandlers.ofString()).body()));
                return done.get().path("status").asText().equals("completed");
            });
            HttpRequest content = HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/files/"
                    + done.get().path("output_file_id").asText() + "/content")).header("Authorization", "Bearer " + KEY).build();
            byte[] output = http.send(content, HttpResponse.BodyHandlers.ofByteArray()).body();

            BatchBilling.Bill bill = new BatchBilling(CARD).bill(batchId, output, requested, Instant.now());
            assertThat(bill.lines()).extracting(BatchBilling.BilledLine::customId).containsExactly("a", "b");
            assertThat(bill.unpricedCustomIds()).isEmpty();
            for (BatchBilling.BilledLine l : bill.lines()) {
                long twice = (l.usage().promptTokens() - l.usage().cachedPromptTokens()) * 150
                        + l.usage().cachedPromptTokens() * 75 + l.usage().completionTokens() * 600;
                // Halved once per line, half to even (ADR 0087).
                assertThat(l.costNanoUsd()).isEqualTo(twice / 2 + (twice % 2 == 1 && (twice / 2) % 2 == 1 ? 1 : 0)).isPositive();
            }
            assertThat(bill.lines().get(0).usage().cachedPromptTokens()).as("an odd cached count: a fractional exact half").isEqualTo(3);

            long upstreamNano = 0;
            JsonNode costs = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl()
                    + "/v1/organization/costs?start_time=" + start)).header("Authorization", "Bearer " + fake.adminKey()).build(),
                    HttpResponse.BodyHandlers.ofString()).body());
            for (JsonNode b : costs.path("data")) {
                for (JsonNode r : b.path("results")) {
                    upstreamNano += r.path("amount").path("value").decimalValue().movePointRight(9)
                            .setScale(0, java.math.RoundingMode.HALF_EVEN).longValueExact(); // a float: its nearest nano-USD
                }
            }
            assertThat(bill.totalNanoUsd()).as("our bill of the batch = the upstream's Costs API").isEqualTo(upstreamNano);

            BatchBilling.Bill again = new BatchBilling(CARD).bill(batchId,
                    http.send(content, HttpResponse.BodyHandlers.ofByteArray()).body(), requested, Instant.now());
            assertThat(again.lines()).extracting(BatchBilling.BilledLine::eventId)
                    .containsExactlyElementsOf(bill.lines().stream().map(BatchBilling.BilledLine::eventId).toList());
        }
    }
}
