package dev.tokenmeter.testkit.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The fake's organization Usage and Costs APIs (issue 16): its own count of what it answered, paged, with drift. */
class FakeUpstreamUsageApiTest {

    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);
    private static final String ORG_KEY = "sk-service-org";
    private static final String ADMIN = "sk-admin-test";
    private static FakeOpenAi fake;
    private static HttpClient http;

    @BeforeAll
    static void start() {
        fake = FakeOpenAi.builder().adminKey(ADMIN).organizationKeys(Set.of(ORG_KEY)).build();
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

    private static HttpResponse<String> call(String key, String path, String body, String project) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(fake.baseUrl() + path))
                .header("Authorization", "Bearer " + key).header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(10)).POST(HttpRequest.BodyPublishers.ofString(body));
        if (project != null) {
            b.header("OpenAI-Project", project);
        }
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return r;
    }

    private static HttpResponse<String> get(String key, String pathAndQuery) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + pathAndQuery))
                .header("Authorization", "Bearer " + key).timeout(Duration.ofSeconds(10)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static JsonNode getOk(String pathAndQuery) throws Exception {
        HttpResponse<String> r = get(ADMIN, pathAndQuery);
        assertThat(r.statusCode()).as(pathAndQuery + " -> " + r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    /** Follows next_page until has_more is false; returns every bucket. */
    private static List<JsonNode> allBuckets(String path, String query) throws Exception {
        List<JsonNode> buckets = new ArrayList<>();
        String page = null;
        int pages = 0;
        do {
            JsonNode p = getOk(path + "?" + query + (page == null ? "" : "&page=" + page));
            assertThat(p.path("object").asText()).isEqualTo("page");
            p.path("data").forEach(buckets::add);
            page = p.path("has_more").asBoolean() ? p.path("next_page").asText() : null;
            assertThat(++pages).as("pages").isLessThan(100);
        } while (page != null);
        return buckets;
    }

    private static String chat(String model) {
        return "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"count these words please\"}]}";
    }

    @Test
    void usageAndCostsCountWhatTheFakeAnsweredOnTheOrganizationsKeysOnly() throws Exception {
        long start = System.currentTimeMillis() / 1000 - 3 * 86_400;
        Usage chat = FakeOpenAi.usageFor("/v1/chat/completions", chat("gpt-4o-mini"));
        Usage emb = FakeOpenAi.usageFor("/v1/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":\"hello there\"}");
        for (int i = 0; i < 3; i++) {
            call(ORG_KEY, "/v1/chat/completions", chat("gpt-4o-mini"), i == 0 ? "proj_b" : null);
        }
        call(ORG_KEY, "/v1/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":\"hello there\"}", null);
        call("sk-users-own-key", "/v1/chat/completions", chat("gpt-4o-mini"), null); // another organization's call

        // Hourly buckets, one per page: paging covers the 3 days and finds the calls once.
        List<JsonNode> hourly = allBuckets("/v1/organization/usage/completions",
                "start_time=" + start + "&bucket_width=1h&limit=24&group_by=model");
        assertThat(hourly.size()).isBetween(72, 74);
        long requests = 0;
        long input = 0;
        long output = 0;
        for (JsonNode b : hourly) {
            assertThat(b.path("object").asText()).isEqualTo("bucket");
            assertThat(b.path("end_time").asLong() - b.path("start_time").asLong()).isBetween(1L, 3600L);
            for (JsonNode r : b.path("results")) {
                assertThat(r.path("object").asText()).isEqualTo("organization.usage.completions.result");
                assertThat(r.path("model").asText()).isEqualTo("gpt-4o-mini-2024-07-18");
                requests += r.path("num_model_requests").asLong();
                input += r.path("input_tokens").asLong();
                output += r.path("output_tokens").asLong();
            }
        }
        assertThat(requests).isEqualTo(3);
        assertThat(input).isEqualTo(3 * chat.promptTokens());
        assertThat(output).isEqualTo(3 * chat.completionTokens());

        // group_by project_id splits the header's project from the default one.
        JsonNode byProject = getOk("/v1/organization/usage/completions?start_time=" + start
                + "&bucket_width=1d&limit=7&group_by=project_id&group_by=model");
        List<String> projects = new ArrayList<>();
        byProject.path("data").forEach(b -> b.path("results").forEach(r ->
                projects.add(r.path("project_id").asText() + "=" + r.path("num_model_requests").asLong())));
        assertThat(projects).containsExactlyInAnyOrder("proj_b=1", UpstreamLedger.DEFAULT_PROJECT_ID + "=2");

        List<JsonNode> embBuckets = allBuckets("/v1/organization/usage/embeddings", "start_time=" + start + "&group_by=model");
        long embInput = 0;
        for (JsonNode b : embBuckets) {
            for (JsonNode r : b.path("results")) {
                assertThat(r.path("object").asText()).isEqualTo("organization.usage.embeddings.result");
                embInput += r.path("input_tokens").asLong();
            }
        }
        assertThat(embInput).isEqualTo(emb.promptTokens());

        // Costs: daily line items in exact decimal USD; their sum is tokens x list price.
        long expectedNano = 3 * ((chat.promptTokens() - chat.cachedPromptTokens()) * 150 + chat.cachedPromptTokens() * 75
                + chat.completionTokens() * 600) + emb.promptTokens() * 20;
        assertThat(costNano(start)).isEqualTo(expectedNano);

        // Drift: one extra request per call and a 10 % higher price are both visible.
        fake.drift(new Drift(1, 110));
        JsonNode drifted = getOk("/v1/organization/usage/completions?start_time=" + start + "&bucket_width=1d&group_by=model");
        long driftedRequests = 0;
        for (JsonNode b : drifted.path("data")) {
            for (JsonNode r : b.path("results")) {
                driftedRequests += r.path("num_model_requests").asLong();
            }
        }
        assertThat(driftedRequests).isEqualTo(6);
        assertThat(costNano(start)).isEqualTo(2 * (3 * ((chat.promptTokens() - chat.cachedPromptTokens()) * 165
                + chat.cachedPromptTokens() * 82 + chat.completionTokens() * 660) + emb.promptTokens() * 22));
    }

    private static long costNano(long start) throws Exception {
        long nano = 0;
        for (JsonNode b : allBuckets("/v1/organization/costs", "start_time=" + start + "&limit=1&group_by=line_item")) {
            for (JsonNode r : b.path("results")) {
                assertThat(r.path("object").asText()).isEqualTo("organization.costs.result");
                assertThat(r.path("amount").path("currency").asText()).isEqualTo("usd");
                assertThat(r.path("line_item").asText()).matches("(gpt-4o-mini-2024-07-18|text-embedding-3-small), (input|cached input|output)");
                assertThat(r.path("amount").path("value").isNumber()).as("a JSON number (a binary float, as OpenAI's)").isTrue();
                BigDecimal usd = r.path("amount").path("value").decimalValue();
                nano += usd.movePointRight(9).setScale(0, RoundingMode.HALF_EVEN).longValueExact();
            }
        }
        return nano;
    }

    private static void transcribe(String key, String model, int audioBytes) throws Exception {
        String boundary = "b0undary";
        String body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + model + "\r\n--" + boundary
                + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n\r\n" + "a".repeat(audioBytes) + "\r\n--"
                + boundary + "--\r\n";
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + "/v1/audio/transcriptions"))
                .header("Authorization", "Bearer " + key).header("Content-Type", "multipart/form-data; boundary=" + boundary)
                .timeout(Duration.ofSeconds(10)).POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    }

    @Test
    void audioTranscriptionsUsageCountsTheSecondsOfWhatTheFakeTranscribed() throws Exception { // ADR 0088
        long start = System.currentTimeMillis() / 1000 - 86_400;
        transcribe(ORG_KEY, "whisper-1", 12_500); // 12.5 s -> 13
        transcribe(ORG_KEY, "whisper-1", 2_400); // 2.4 s -> 2
        transcribe(ORG_KEY, "gpt-4o-transcribe", 5_000); // 5 s
        transcribe("sk-users-own-key", "whisper-1", 9_000); // another organization's call
        List<String> rows = new ArrayList<>();
        for (JsonNode b : allBuckets("/v1/organization/usage/audio_transcriptions", "start_time=" + start + "&group_by=model")) {
            b.path("results").forEach(r -> {
                assertThat(r.path("object").asText()).isEqualTo("organization.usage.audio_transcriptions.result");
                rows.add(r.path("model").asText() + " " + r.path("seconds").asLong() + "s " + r.path("num_model_requests").asLong());
            });
        }
        assertThat(rows).containsExactlyInAnyOrder("whisper-1 15s 2", "gpt-4o-transcribe 5s 1");
    }

    private static JsonNode multipart(String key, String path, String model, String fileField, int fileBytes, String prompt) throws Exception {
        String boundary = "b0undary";
        String body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + model + "\r\n"
                + (prompt == null ? "" : "--" + boundary + "\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n" + prompt + "\r\n")
                + "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + fileField + "\"; filename=\"a.bin\"\r\n\r\n"
                + "a".repeat(fileBytes) + "\r\n--" + boundary + "--\r\n";
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(fake.baseUrl() + path))
                .header("Authorization", "Bearer " + key).header("Content-Type", "multipart/form-data; boundary=" + boundary)
                .timeout(Duration.ofSeconds(10)).POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    /** Every result of {@code /v1/organization/usage/<kind>} grouped by {@code groupBy}, as "field=value ..." lines. */
    private static List<String> mediaRows(String kind, long start, String groupBy, String quantity) throws Exception {
        List<String> rows = new ArrayList<>();
        for (JsonNode b : allBuckets("/v1/organization/usage/" + kind, "start_time=" + start + "&group_by=" + groupBy)) {
            b.path("results").forEach(r -> {
                assertThat(r.path("object").asText()).isEqualTo("organization.usage." + kind + ".result");
                StringBuilder row = new StringBuilder();
                for (String g : groupBy.split(",")) {
                    row.append(r.path(g).asText()).append(' ');
                }
                rows.add(row + quantity + "=" + r.path(quantity).asLong() + " requests=" + r.path("num_model_requests").asLong());
            });
        }
        return rows;
    }

    /** The Costs API's line items since {@code start}, each rounded to whole nano-USD. */
    private static java.util.Map<String, Long> costItems(long start) throws Exception {
        java.util.Map<String, Long> items = new java.util.TreeMap<>();
        for (JsonNode b : allBuckets("/v1/organization/costs", "start_time=" + start + "&group_by=line_item")) {
            for (JsonNode r : b.path("results")) {
                items.merge(r.path("line_item").asText(), r.path("amount").path("value").decimalValue().movePointRight(9)
                        .setScale(0, RoundingMode.HALF_EVEN).longValueExact(), Long::sum);
            }
        }
        return items;
    }

    @Test
    void mediaCallsAreCountedInTheirOwnUsageEndpointsAndPricedInTheCostsApi() throws Exception { // issue 16, ADR 0086
        long start = System.currentTimeMillis() / 1000 - 86_400;
        JsonNode generation = JSON.readTree(call(ORG_KEY, "/v1/images/generations",
                "{\"model\":\"gpt-image-1\",\"prompt\":\"a red fox in the snow\",\"n\":2,\"size\":\"1024x1024\",\"quality\":\"low\"}", null).body());
        JsonNode edit = multipart(ORG_KEY, "/v1/images/edits", "gpt-image-1", "image", 300, "make it blue");
        call(ORG_KEY, "/v1/audio/speech", "{\"model\":\"tts-1\",\"voice\":\"alloy\",\"input\":\"Hello, fox!\"}", null);
        multipart(ORG_KEY, "/v1/audio/transcriptions", "whisper-1", "file", 12_500, null); // 12.5 s -> 13
        JsonNode mini = multipart(ORG_KEY, "/v1/audio/transcriptions", "gpt-4o-mini-transcribe", "file", 3_200, null);
        call(ORG_KEY, "/v1/moderations", "{\"input\":\"is this fine\"}", null);
        call("sk-users-own-key", "/v1/images/generations", "{\"model\":\"gpt-image-1\",\"prompt\":\"not ours\"}", null);

        assertThat(mediaRows("images", start, "model,source,size", "images")).containsExactlyInAnyOrder(
                "gpt-image-1 image.edit 1024x1024 images=1 requests=1", "gpt-image-1 image.generation 1024x1024 images=2 requests=1");
        assertThat(mediaRows("audio_speeches", start, "model", "characters")).containsExactly("tts-1 characters=11 requests=1");
        assertThat(mediaRows("audio_transcriptions", start, "model", "seconds"))
                .containsExactlyInAnyOrder("whisper-1 seconds=13 requests=1", "gpt-4o-mini-transcribe seconds=3 requests=1");
        assertThat(mediaRows("moderations", start, "model", "input_tokens")).singleElement().asString()
                .matches("omni-moderation-2024-09-26 input_tokens=[1-9]\\d* requests=1");
        assertThat(fake.requestCount()).as("admin reads are not proxied calls").isEqualTo(7);

        long genIn = generation.at("/usage/input_tokens").asLong();
        long genOut = generation.at("/usage/output_tokens").asLong();
        long editImage = edit.at("/usage/input_tokens_details/image_tokens").asLong();
        long editText = edit.at("/usage/input_tokens").asLong() - editImage;
        long editOut = edit.at("/usage/output_tokens").asLong();
        assertThat(editImage).isEqualTo(FakeUploads.IMAGE_TOKENS_PER_INPUT);
        long miniAudio = mini.at("/usage/input_token_details/audio_tokens").asLong();
        long miniOut = mini.at("/usage/output_tokens").asLong();
        assertThat(miniAudio).isEqualTo(100);
        java.util.Map<String, Long> expected = new java.util.TreeMap<>(java.util.Map.of(
                "gpt-image-1, input", (genIn + editText) * 5000, "gpt-image-1, image input", editImage * 10_000,
                "gpt-image-1, output", (genOut + editOut) * 40_000, "tts-1, characters", 11 * 15_000L,
                "whisper-1, seconds", 13 * 100_000L, "gpt-4o-mini-transcribe, audio input", miniAudio * 3000,
                "gpt-4o-mini-transcribe, output", miniOut * 5000));
        assertThat(costItems(start)).as("moderations are free: no line item").isEqualTo(expected);

        fake.drift(new Drift(1, 110));
        assertThat(mediaRows("audio_speeches", start, "model", "characters")).containsExactly("tts-1 characters=22 requests=2");
        java.util.Map<String, Long> drifted = new java.util.TreeMap<>();
        expected.forEach((item, nano) -> drifted.put(item, nano * 2 * 110 / 100));
        assertThat(costItems(start)).isEqualTo(drifted);
    }

    @Test
    void adminEndpointsRefuseOtherKeysAndBadParameters() throws Exception {
        assertThat(get("sk-service-org", "/v1/organization/costs?start_time=0").statusCode()).isEqualTo(401);
        for (String bad : List.of("/v1/organization/costs", "/v1/organization/costs?start_time=x",
                "/v1/organization/costs?start_time=0&bucket_width=1h",
                "/v1/organization/usage/completions?start_time=0&bucket_width=2h",
                "/v1/organization/usage/completions?start_time=0&limit=0",
                "/v1/organization/usage/completions?start_time=0&bucket_width=1d&limit=32",
                "/v1/organization/usage/completions?start_time=0&group_by=colour",
                "/v1/organization/usage/completions?start_time=0&page=%21%21")) {
            HttpResponse<String> r = get(ADMIN, bad);
            assertThat(r.statusCode()).as(bad + " -> " + r.body()).isEqualTo(400);
            assertThat(JSON.readTree(r.body()).path("error").path("message").asText()).isNotBlank();
        }
        assertThat(fake.requestCount()).as("admin reads are not proxied calls").isZero();
    }
}
