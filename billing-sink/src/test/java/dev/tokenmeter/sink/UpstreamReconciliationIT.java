package dev.tokenmeter.sink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UpstreamDifference;
import dev.tokenmeter.events.UsageAlert;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.openai.Drift;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.PostgresEngine;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jooq.Record;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Reconciliation with OpenAI's bill (issue 16, ADR 0086): calls answered by the fake upstream, billed through the
 * real ledger path (Kafka -> sink -> Postgres), read back from the fake's own Usage and Costs APIs by the sink's
 * upstream reconciler: zero difference per day and model; with the fake's drift switch on, the difference is
 * exact and reported. Users' own-key calls and response-cache hits never reach the comparison.
 */
@ExtendWith(EnginesExtension.class)
class UpstreamReconciliationIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SERVICE_KEY = "sk-service-credit";
    private static final String ADMIN_KEY = "sk-admin-reconcile-test";
    /** nano-USD per token {input, cached input, output}: the 2025 list prices (V3), as the edge bills them. */
    private static final Map<String, long[]> PRICES = Map.of(
            "gpt-4o-mini", new long[] {150, 75, 600}, "gpt-4.1-nano", new long[] {100, 25, 400},
            "text-embedding-3-small", new long[] {20, 0, 0});

    @Test
    void zeroDifferenceOnPipelineTrafficAndDriftIsCaughtExactly(KafkaEngine kafka, PostgresEngine postgres) throws Exception {
        try (FakeOpenAi upstream = FakeOpenAi.builder().adminKey(ADMIN_KEY).organizationKeys(Set.of(SERVICE_KEY)).build();
             HttpClient http = HttpClient.newHttpClient();
             SinkFixture sink = new SinkFixture(kafka, postgres, 3)) {
            List<UsageEvent> events = new ArrayList<>();
            Instant now = Instant.now();
            for (int i = 0; i < 12; i++) {
                String model = i % 3 == 0 ? "gpt-4.1-nano" : "gpt-4o-mini";
                String body = "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"call number "
                        + i + " [[fake:cached=" + (i % 2 == 0 ? 0 : 3) + "]]\"}]}";
                events.add(billed(http, upstream, "/v1/chat/completions", body, SERVICE_KEY, KeySource.SERVICE_CREDIT, now));
            }
            for (int i = 0; i < 3; i++) {
                events.add(billed(http, upstream, "/v1/embeddings",
                        "{\"model\":\"text-embedding-3-small\",\"input\":\"text " + i + "\"}", SERVICE_KEY, KeySource.SERVICE_CREDIT, now));
            }
            // A user's own key: OpenAI bills that user, not the service's organization; out of scope on both sides.
            events.add(billed(http, upstream, "/v1/chat/completions",
                    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"mine\"}]}", "sk-users-own",
                    KeySource.PERSONAL_KEY, now));
            // A response-cache hit: billed to the user, never sent upstream (upstream cost 0).
            UsageEvent hit = UsageEvent.newBuilder(events.get(1)).setEventId(java.util.UUID.randomUUID().toString())
                    .setResponseCacheHit(true).setUpstreamCostNanoUsd(0L).build();
            events.add(hit);

            sink.startApp(Map.of());
            sink.sendEvents(events);
            await("ledger holds the " + events.size() + " events").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.ledgerRows() == events.size());
            sink.stopApp();

            Map<String, String> upstreamOn = Map.of("UPSTREAM_ADMIN_KEY", ADMIN_KEY, "UPSTREAM_BASE_URL", upstream.baseUrl(),
                    "UPSTREAM_RECONCILE_INTERVAL", "500ms", "UPSTREAM_REREAD_DAYS", "2", "UPSTREAM_CHECK_OPEN_DAY", "true",
                    "UPSTREAM_TOLERANCE_NANO_USD", "0");
            sink.startApp(upstreamOn, Clock.systemUTC());
            LocalDate today = LocalDate.ofInstant(now, ZoneOffset.UTC);
            await("the reconciler has read today and the two days before").atMost(Duration.ofSeconds(30))
                    .until(() -> sink.longValue("SELECT count(*) FROM upstream_read_day WHERE day >= ?", today.minusDays(2)) == 3);
            // Two more runs after the first: nothing reported in any of them.
            long firstRead = sink.longValue("SELECT extract(epoch FROM read_at) * 1000 FROM upstream_read_day WHERE day = ?", today);
            await("two more runs").atMost(Duration.ofSeconds(30)).until(() ->
                    sink.longValue("SELECT extract(epoch FROM read_at) * 1000 FROM upstream_read_day WHERE day = ?", today) > firstRead + 500);
            List<Record> rows = sink.db.fetch("SELECT * FROM upstream_reconciliation WHERE day = ? ORDER BY model", today);
            assertThat(rows).extracting(r -> r.get("model", String.class))
                    .containsExactly("gpt-4.1-nano-2025-04-14", "gpt-4o-mini-2024-07-18", "text-embedding-3-small");
            long serviceChat = 12;
            assertThat(rows.stream().mapToLong(r -> r.get("ours_requests", Long.class)).sum()).isEqualTo(serviceChat + 3);
            for (Record r : rows) {
                for (String diff : List.of("requests_difference", "input_tokens_difference", "cached_input_tokens_difference",
                        "output_tokens_difference", "cost_nano_usd_difference")) {
                    assertThat(r.get(diff, Long.class)).as(diff + " of " + r.get("model")).isZero();
                }
                assertThat(r.get("upstream_cost_nano_usd", Long.class)).as("cost of " + r.get("model")).isPositive();
            }
            assertThat(rows.stream().mapToLong(r -> r.get("ours_cached_input_tokens", Long.class)).sum()).isEqualTo(6 * 3);
            try (KafkaConsumer<String, UsageAlert> alerts = alertConsumer(kafka, sink)) {
                assertThat(alerts.endOffsets(alerts.assignment()).values().stream().mapToLong(Long::longValue).sum())
                        .as("alerts published with no drift").isZero();
            }

            // Drift: one extra request per call and prices 10 % up. Each model's difference is caught, exactly, and
            // published on usage-alerts as an upstream_difference alert (UsageAlert v2).
            upstream.drift(new Drift(1, 110));
            Map<String, UsageAlert> byModel = new java.util.TreeMap<>();
            try (KafkaConsumer<String, UsageAlert> alerts = alertConsumer(kafka, sink)) {
                await("an upstream_difference alert per model on usage-alerts").atMost(Duration.ofSeconds(30)).until(() -> {
                    for (ConsumerRecord<String, UsageAlert> r : alerts.poll(Duration.ofMillis(200))) {
                        byModel.put(r.value().getUpstreamDifference().getModel(), r.value());
                    }
                    return byModel.size() == 3;
                });
            }
            assertThat(byModel.keySet()).containsExactly("gpt-4.1-nano-2025-04-14", "gpt-4o-mini-2024-07-18", "text-embedding-3-small");
            UsageAlert alert = byModel.get("gpt-4o-mini-2024-07-18");
            UpstreamDifference mini = alert.getUpstreamDifference();
            assertThat(alert.getKind()).isEqualTo("upstream_difference");
            assertThat(alert.getAlertId()).isEqualTo("upstream|" + today + "|gpt-4o-mini-2024-07-18");
            assertThat(alert.getSource()).isEqualTo("billing-sink");
            assertThat(mini.getDay()).isEqualTo(today.toString());
            assertThat(mini.getOursRequests()).isEqualTo(8);
            assertThat(mini.getUpstreamRequests()).isEqualTo(16);
            long expectedUpstreamCost = 0;
            for (UsageEvent e : events) {
                if (e.getKeySource() == KeySource.SERVICE_CREDIT && !e.getResponseCacheHit() && e.getModel().equals("gpt-4o-mini")) {
                    expectedUpstreamCost += 2 * cost(e, 110);
                }
            }
            assertThat(mini.getUpstreamCostNanoUsd()).isEqualTo(expectedUpstreamCost);
            assertThat(alert.getCostNanoUsd()).isEqualTo(expectedUpstreamCost - mini.getOursCostNanoUsd());
            assertThat(sink.registry.find("sink_upstream_differences").counter().count()).isGreaterThanOrEqualTo(3);
        }
    }

    /**
     * Images, speech, transcriptions and moderations (V36): read from the fake's /usage/images, /audio_speeches,
     * /audio_transcriptions, /moderations and their cost line items, compared per day and model with zero
     * difference; then a transcription the edge never saw and a 10 % image price drift are each caught exactly, and a
     * moderation (free) still shows no difference.
     */
    @Test
    void mediaCallsReconcileExactlyAndAMissingTranscriptionOrADriftedImagePriceIsCaught(KafkaEngine kafka, PostgresEngine postgres)
            throws Exception {
        try (FakeOpenAi upstream = FakeOpenAi.builder().adminKey(ADMIN_KEY).organizationKeys(Set.of(SERVICE_KEY)).build();
             HttpClient http = HttpClient.newHttpClient();
             SinkFixture sink = new SinkFixture(kafka, postgres, 3)) {
            Instant now = Instant.now();
            List<UsageEvent> events = new ArrayList<>();
            JsonNode image = JSON.readTree(send(http, upstream, "/v1/images/generations", "application/json",
                    "{\"model\":\"gpt-image-1\",\"prompt\":\"a lighthouse at dusk\",\"quality\":\"low\"}"));
            long imageIn = image.at("/usage/input_tokens").asLong();
            long imageOut = image.at("/usage/output_tokens").asLong();
            events.add(media("/v1/images/generations", "gpt-image-1", null, now, imageIn, imageOut, imageIn * 5000 + imageOut * 40_000));
            send(http, upstream, "/v1/audio/speech", "application/json", "{\"model\":\"tts-1\",\"voice\":\"alloy\",\"input\":\"Good evening.\"}");
            events.add(media("/v1/audio/speech", "tts-1", null, now, 13, 0, 13 * 15_000));
            send(http, upstream, "/v1/audio/transcriptions", MULTIPART, transcription("whisper-1", 12_500)); // 12.5 s -> 13 s
            events.add(media("/v1/audio/transcriptions", "whisper-1", null, now, 13, 0, 13 * 100_000));
            JsonNode mini = JSON.readTree(send(http, upstream, "/v1/audio/transcriptions", MULTIPART,
                    transcription("gpt-4o-mini-transcribe", 3_200)));
            long audio = mini.at("/usage/input_token_details/audio_tokens").asLong();
            long miniOut = mini.at("/usage/output_tokens").asLong();
            events.add(media("/v1/audio/transcriptions", "gpt-4o-mini-transcribe", null, now, audio, miniOut, audio * 3000 + miniOut * 5000));
            send(http, upstream, "/v1/moderations", "application/json", "{\"input\":\"is this all right\"}");
            events.add(media("/v1/moderations", "omni-moderation-latest", "omni-moderation-2024-09-26", now, 5, 0, 0));

            sink.startApp(Map.of());
            sink.sendEvents(events);
            await("ledger holds the " + events.size() + " media events").atMost(Duration.ofSeconds(60))
                    .until(() -> sink.ledgerRows() == events.size());
            sink.stopApp();
            sink.startApp(Map.of("UPSTREAM_ADMIN_KEY", ADMIN_KEY, "UPSTREAM_BASE_URL", upstream.baseUrl(),
                    "UPSTREAM_RECONCILE_INTERVAL", "500ms", "UPSTREAM_REREAD_DAYS", "0", "UPSTREAM_CHECK_OPEN_DAY", "true",
                    "UPSTREAM_TOLERANCE_NANO_USD", "0"), Clock.systemUTC());
            LocalDate today = LocalDate.ofInstant(now, ZoneOffset.UTC);
            await("the reconciler has read today").atMost(Duration.ofSeconds(30))
                    .until(() -> sink.longValue("SELECT count(*) FROM upstream_read_day WHERE day = ?", today) == 1);
            List<Record> rows = sink.db.fetch("SELECT * FROM upstream_reconciliation WHERE day = ? ORDER BY model", today);
            assertThat(rows).extracting(r -> r.get("model", String.class)).containsExactly("gpt-4o-mini-transcribe",
                    "gpt-image-1", "omni-moderation-2024-09-26", "tts-1", "whisper-1");
            for (Record r : rows) {
                assertThat(r.get("ours_requests", Long.class)).as("our requests of " + r.get("model")).isEqualTo(1);
                for (String diff : List.of("requests_difference", "input_tokens_difference", "cached_input_tokens_difference",
                        "output_tokens_difference", "cost_nano_usd_difference")) {
                    assertThat(r.get(diff, Long.class)).as(diff + " of " + r.get("model")).isZero();
                }
            }
            assertThat(sink.longValue("SELECT upstream_cost_nano_usd FROM upstream_reconciliation WHERE day = ? AND model = 'gpt-image-1'", today))
                    .isEqualTo(imageIn * 5000 + imageOut * 40_000);
            assertThat(sink.longValue("SELECT units FROM upstream_usage_bucket WHERE day = ? AND source = 'audio_speeches'", today))
                    .as("characters as OpenAI counts them").isEqualTo(13);
            assertThat(sink.longValue("SELECT units FROM upstream_usage_bucket WHERE day = ? AND source = 'images'", today)).isEqualTo(1);
            try (KafkaConsumer<String, UsageAlert> alerts = alertConsumer(kafka, sink)) {
                assertThat(alerts.endOffsets(alerts.assignment()).values().stream().mapToLong(Long::longValue).sum())
                        .as("alerts published with no drift").isZero();
            }

            // A transcription answered on the service's key that the edge never billed, and image prices 10 % up.
            send(http, upstream, "/v1/audio/transcriptions", MULTIPART, transcription("whisper-1", 12_500));
            upstream.drift(Drift.price(110));
            Map<String, UpstreamDifference> byModel = new java.util.TreeMap<>();
            try (KafkaConsumer<String, UsageAlert> alerts = alertConsumer(kafka, sink)) {
                await("upstream_difference alerts for whisper-1 (2 requests) and gpt-image-1 (drifted)").atMost(Duration.ofSeconds(30)).until(() -> {
                    for (ConsumerRecord<String, UsageAlert> r : alerts.poll(Duration.ofMillis(200))) {
                        byModel.put(r.value().getUpstreamDifference().getModel(), r.value().getUpstreamDifference());
                    }
                    UpstreamDifference whisper = byModel.get("whisper-1");
                    return byModel.containsKey("gpt-image-1") && whisper != null && whisper.getUpstreamRequests() == 2
                            && whisper.getUpstreamCostNanoUsd() == 2 * 13 * 110_000L;
                });
            }
            UpstreamDifference img = byModel.get("gpt-image-1");
            assertThat(img.getOursRequests()).isEqualTo(1);
            assertThat(img.getUpstreamRequests()).isEqualTo(1);
            assertThat(img.getOursCostNanoUsd()).isEqualTo(imageIn * 5000 + imageOut * 40_000);
            assertThat(img.getUpstreamCostNanoUsd()).isEqualTo(imageIn * 5500 + imageOut * 44_000);
            assertThat(byModel.get("whisper-1").getOursRequests()).isEqualTo(1);
            assertThat(byModel).as("a moderation is free: no price drift can make it differ").doesNotContainKey("omni-moderation-2024-09-26");
            assertThat(sink.longValue("SELECT requests_difference + cost_nano_usd_difference FROM upstream_reconciliation"
                    + " WHERE day = ? AND model = 'omni-moderation-2024-09-26'", today)).isZero();
        }
    }

    private static final String MULTIPART = "multipart/form-data; boundary=b0undary";

    /** A transcription upload of {@code audioBytes} bytes (the fake's 1,000 bytes a second). */
    private static String transcription(String model, int audioBytes) {
        return "--b0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + model + "\r\n--b0undary\r\n"
                + "Content-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n\r\n" + "a".repeat(audioBytes)
                + "\r\n--b0undary--\r\n";
    }

    private static String send(HttpClient http, FakeOpenAi upstream, String path, String contentType, String body) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(upstream.baseUrl() + path))
                .header("Authorization", "Bearer " + SERVICE_KEY).header("Content-Type", contentType)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return r.body();
    }

    /** The event the edge writes for a media call on the service's credit, at the price the edge charges. */
    private static UsageEvent media(String endpoint, String model, String answeredModel, Instant at, long prompt, long completion,
                                    long cost) {
        UsageEvent e = SinkFixture.event("user-1", model, KeySource.SERVICE_CREDIT, at, prompt, completion, cost);
        e.setEndpoint(endpoint);
        e.setAnsweredModel(answeredModel);
        e.setUpstreamCostNanoUsd(cost);
        return e;
    }

    private static KafkaConsumer<String, UsageAlert> alertConsumer(KafkaEngine kafka, SinkFixture sink) {
        Map<String, Object> props = new java.util.HashMap<>(kafka.clientProperties());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        KafkaConsumer<String, UsageAlert> consumer = new KafkaConsumer<>(props, sink.topics.alerts().keySerde().deserializer(),
                sink.topics.alerts().valueSerde().deserializer());
        List<TopicPartition> partitions = consumer.partitionsFor(sink.topics.alerts().name()).stream()
                .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return consumer;
    }

    /** One call to the fake; the event the edge would write for it, priced at the list price. */
    private static UsageEvent billed(HttpClient http, FakeOpenAi upstream, String path, String body, String key,
                                     KeySource source, Instant at) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(upstream.baseUrl() + path))
                .header("Authorization", "Bearer " + key).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        JsonNode answer = JSON.readTree(r.body());
        JsonNode usage = answer.path("usage");
        String model = JSON.readTree(body).path("model").asText();
        long prompt = usage.path("prompt_tokens").asLong();
        long cached = usage.path("prompt_tokens_details").path("cached_tokens").asLong(0);
        long completion = usage.path("completion_tokens").asLong(0);
        UsageEvent e = SinkFixture.event("user-1", model, source, at, prompt, completion, 0);
        e.setCachedPromptTokens(cached);
        e.setAnsweredModel(answer.path("model").asText());
        e.setEndpoint(path);
        e.setCostNanoUsd(cost(e, 100));
        e.setUpstreamCostNanoUsd(e.getCostNanoUsd());
        return e;
    }

    private static long cost(UsageEvent e, int percent) {
        long[] p = PRICES.get(e.getModel());
        return (e.getPromptTokens() - e.getCachedPromptTokens()) * (p[0] * percent / 100)
                + e.getCachedPromptTokens() * (p[1] * percent / 100) + e.getCompletionTokens() * (p[2] * percent / 100);
    }
}
