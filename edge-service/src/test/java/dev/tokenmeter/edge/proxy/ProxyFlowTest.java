package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.call.InMemorySink;
import dev.tokenmeter.edge.call.ScriptedQuota;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.ServiceTier;
import dev.tokenmeter.edge.quota.RejectReason;
import dev.tokenmeter.edge.tokens.RequestEstimate;
import dev.tokenmeter.edge.tokens.TokenCounter;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.ConnectException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The proxy's flow over a fake exchange, without an engine: a scripted quota gate and upstream, an in-memory event
 * sink. What the ITs prove on Redis, Kafka and Postgres, here step by step: one event per call, its cost exactly
 * tokens × price, the reservation settled with that cost after the answer or released, the caller's answer.
 */
class ProxyFlowTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String MODEL = "gpt-test";
    private static final long INPUT_NANO_USD = 150;
    private static final long OUTPUT_NANO_USD = 600;
    private static final ModelPrice PRICE =
            new ModelPrice(MODEL, Instant.EPOCH, INPUT_NANO_USD, null, OUTPUT_NANO_USD, "v-test");
    /** Tier rows of the same model (issue 16): flex at half, priority at 1.7 times the standard price. */
    private static final ModelPrice FLEX = new ModelPrice(MODEL, ServiceTier.FLEX, Instant.EPOCH, 75, null, 300L, "v-test:flex");
    private static final ModelPrice PRIORITY =
            new ModelPrice(MODEL, ServiceTier.PRIORITY, Instant.EPOCH, 255, null, 1020L, "v-test:priority");
    private static final java.util.Map<ServiceTier, ModelPrice> TIERS =
            java.util.Map.of(ServiceTier.STANDARD, PRICE, ServiceTier.FLEX, FLEX, ServiceTier.PRIORITY, PRIORITY);
    private static final Caller CALLER = new Caller("key-1", "user-1", "tenant-1");
    private static final String CHAT = "/v1/chat/completions";
    private static final String REQUEST = "{\"model\":\"" + MODEL + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":16}";
    private static final String STREAM_REQUEST =
            "{\"model\":\"" + MODEL + "\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":16}";
    private static final String CHUNK_1 = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n";
    private static final String CHUNK_2 = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo there\"}}]}\n\n";
    private static final String USAGE_CHUNK =
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n";
    private static final String DONE = "data: [DONE]\n\n";

    private final List<String> timeline = new ArrayList<>();
    private static final TokenCounter tokens = new TokenCounter();
    private ScriptedQuota quota;
    private InMemorySink sink;
    private ScriptedUpstream upstream;
    private OpenAiProxyHandler proxy;

    @BeforeEach
    void setUp() {
        quota = new ScriptedQuota(timeline);
        sink = new InMemorySink(timeline);
        upstream = new ScriptedUpstream();
        proxy = OpenAiProxyHandler.builder()
                .authenticator(key -> key.equals("tm_good") ? Optional.of(CALLER) : Optional.empty())
                .prices((model, tier, at) -> model.equals(MODEL) ? Optional.ofNullable(TIERS.get(tier)) : Optional.empty())
                .tokenCounter(tokens)
                .quota(quota)
                .keys(new UpstreamKeys("sk-service", null, null))
                .sink(sink)
                .metrics(new EdgeMetrics(new SimpleMeterRegistry(), sink))
                .upstream(upstream)
                .drainTimeout(Duration.ofSeconds(30))
                .build();
    }

    private RecordingExchange call(String body) {
        RecordingExchange exchange = new RecordingExchange("tm_good", body, timeline);
        proxy.handle(exchange, CHAT);
        return exchange;
    }

    private UsageEvent theOneEvent() {
        assertThat(sink.events).as("events of the call").hasSize(1);
        return sink.events.get(0);
    }

    private static long cost(long promptTokens, long completionTokens) {
        return promptTokens * INPUT_NANO_USD + completionTokens * OUTPUT_NANO_USD;
    }

    /** The prompt as the edge estimates it, and the completion tokens it counts in the streamed deltas. */
    private long promptEstimate(String request) throws IOException {
        return RequestEstimate.of(CHAT, MODEL, JSON.readTree(request), tokens, 1024).promptTokens();
    }

    private long counted(String... deltas) {
        long sum = 0;
        for (String d : deltas) {
            sum += Math.max(1, tokens.count(MODEL, d));
        }
        return sum;
    }

    @Test
    void success_billsTheReportedTokensAtThePriceExactly_andSettlesAfterTheAnswer() throws Exception {
        String answer = "{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"Hello\"}}],"
                + "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}";
        upstream.answer(200, "application/json", answer);

        RecordingExchange exchange = call(REQUEST);

        assertThat(exchange.status).isEqualTo(200);
        assertThat(exchange.bodyText()).isEqualTo(answer);
        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(event.getPromptTokens()).isEqualTo(11);
        assertThat(event.getCompletionTokens()).isEqualTo(7);
        assertThat(event.getCostNanoUsd()).isEqualTo(cost(11, 7));
        assertThat(event.getPriceVersion()).isEqualTo("v-test");
        assertThat(event.getKeySource()).isEqualTo(KeySource.SERVICE_CREDIT);
        assertThat(event.getReservationId()).isEqualTo("res-1");
        assertThat(event.getUpstreamRequestId()).isEqualTo("req_upstream_1");
        assertThat(exchange.headers).containsEntry("x-tokenmeter-event-id", event.getEventId())
                .containsEntry("x-ratelimit-limit-requests", "100").containsEntry("x-request-id", "req_upstream_1");
        assertThat(quota.settles).containsExactly(new ScriptedQuota.Settle("res-1", cost(11, 7), 18, event.getEventId()));
        assertThat(quota.releases).isEmpty();
        // The event before the answer, the settle after it (off the caller's wait).
        assertThat(timeline).containsExactly("reserve", "event", "answered", "finished", "settle");
        // The reservation held the estimate: the prompt as counted plus max_tokens, at the price.
        assertThat(quota.reservedCosts).containsExactly(cost(promptEstimate(REQUEST), 16));
        // Upstream: the service key, never the caller's.
        ScriptedUpstream.Sent sent = upstream.sent.get(0);
        assertThat(sent.headers()).containsEntry("Authorization", "Bearer sk-service");
        assertThat(sent.body()).isEqualTo(REQUEST);
    }

    @Test
    void theEventsTimeAndLatencyStartWhenTheRequestArrives_beforeTheKeyCheck() throws Exception {
        // A clock that moves a minute per reading, and a key check that takes 60 ms (a cache miss to Postgres).
        Instant t0 = Instant.parse("2026-12-03T10:00:00Z");
        java.util.concurrent.atomic.AtomicInteger readings = new java.util.concurrent.atomic.AtomicInteger();
        java.time.Clock ticking = new java.time.Clock() {
            @Override public java.time.ZoneId getZone() { return java.time.ZoneOffset.UTC; }
            @Override public java.time.Clock withZone(java.time.ZoneId zone) { return this; }
            @Override public Instant instant() { return t0.plusSeconds(60L * readings.getAndIncrement()); }
        };
        OpenAiProxyHandler slowKeys = OpenAiProxyHandler.builder()
                .authenticator(key -> {
                    ticking.instant(); // a minute passes on the events' clock during the check
                    java.util.concurrent.locks.LockSupport.parkNanos(60_000_000);
                    return Optional.of(CALLER);
                })
                .prices((model, tier, at) -> Optional.of(PRICE)).tokenCounter(tokens).quota(quota)
                .keys(new UpstreamKeys("sk-service", null, null)).sink(sink)
                .metrics(new EdgeMetrics(new SimpleMeterRegistry(), sink)).upstream(upstream)
                .drainTimeout(Duration.ofSeconds(30)).clock(ticking).build();
        upstream.answer(200, "application/json", "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}");

        slowKeys.handle(new RecordingExchange("tm_good", REQUEST, timeline), CHAT);

        UsageEvent event = theOneEvent();
        assertThat(event.getOccurredAt()).as("the first clock reading of the call, taken before the key check").isEqualTo(t0);
        assertThat(event.getLatencyMs()).as("latency includes the 60 ms key check").isGreaterThanOrEqualTo(60);
    }

    @Test
    void rejectedByTheQuota_oneRejectedEvent_429WithQuotaHeaders_andNoUpstreamCall() throws Exception {
        quota.next = ScriptedQuota.rejected(RejectReason.CREDIT_EXHAUSTED);

        RecordingExchange exchange = call(REQUEST);

        assertThat(exchange.status).isEqualTo(429);
        assertThat(JSON.readTree(exchange.bodyText()).at("/error/code").asText()).isEqualTo("insufficient_quota");
        assertThat(exchange.headers).containsEntry("x-ratelimit-remaining-requests", "99")
                .containsEntry("x-credit-remaining-usd", "0.000000000")
                .containsEntry("x-should-retry", "false");
        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(event.getHttpStatus()).isEqualTo(429);
        assertThat(event.getCostNanoUsd()).isZero();
        assertThat(event.getKeySource()).isEqualTo(KeySource.NONE);
        assertThat(event.getAttributes()).containsEntry("reject_reason", "CREDIT_EXHAUSTED");
        assertThat(exchange.headers).containsEntry("x-tokenmeter-event-id", event.getEventId());
        assertThat(upstream.sent).isEmpty();
        assertThat(quota.settles).isEmpty();
        assertThat(quota.releases).isEmpty();
    }

    @Test
    void upstream5xx_failedEvent_reservationReleased_bodyPassedThrough() throws Exception {
        String error = "{\"error\":{\"message\":\"The server is overloaded\",\"type\":\"server_error\"}}";
        upstream.answer(503, "application/json", error);

        RecordingExchange exchange = call(REQUEST);

        assertThat(exchange.status).isEqualTo(503);
        assertThat(exchange.bodyText()).isEqualTo(error);
        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.FAILED);
        assertThat(event.getHttpStatus()).isEqualTo(503);
        assertThat(event.getCostNanoUsd()).isZero();
        assertThat(event.getAttributes()).containsEntry("failure", "upstream_status_503");
        assertThat(quota.releases).containsExactly("res-1");
        assertThat(quota.settles).isEmpty();
    }

    @Test
    void upstreamUnreachable_502_failedEvent_reservationReleased() throws Exception {
        upstream.failing(new ConnectException("Connection refused"));

        RecordingExchange exchange = call(REQUEST);

        assertThat(exchange.status).isEqualTo(502);
        assertThat(JSON.readTree(exchange.bodyText()).at("/error/code").asText()).isEqualTo("upstream_unreachable");
        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.FAILED);
        assertThat(event.getAttributes()).containsEntry("failure", "upstream_unreachable");
        assertThat(event.getCostNanoUsd()).isZero();
        assertThat(quota.releases).containsExactly("res-1");
        assertThat(quota.settles).isEmpty();
    }

    @Test
    void upstreamTimeout_504() throws Exception {
        upstream.failing(new Upstream.UpstreamTimeoutException("no answer"));

        RecordingExchange exchange = call(REQUEST);

        assertThat(exchange.status).isEqualTo(504);
        assertThat(theOneEvent().getAttributes()).containsEntry("failure", "upstream_timeout");
        assertThat(quota.releases).containsExactly("res-1");
    }

    @Test
    void spoolFull_503_noEvent_reservationReleased() throws Exception {
        upstream.answer(200, "application/json", "{\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7}}");
        sink.full = true;

        RecordingExchange exchange = call(REQUEST);

        assertThat(exchange.status).isEqualTo(503);
        assertThat(exchange.headers).containsEntry("retry-after", "5").doesNotContainKey("x-tokenmeter-event-id");
        assertThat(sink.events).isEmpty();
        assertThat(quota.releases).containsExactly("res-1");
        assertThat(quota.settles).isEmpty();
    }

    // ---- issue 16: the tier the answer reports is billed; the request's only drives the estimate ----

    private static String chatAnswer(String model, String tier) {
        return "{\"id\":\"chatcmpl-1\",\"model\":\"" + model + "\",\"choices\":[{\"message\":{\"content\":\"Hello\"}}],"
                + "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18},\"service_tier\":\"" + tier + "\"}";
    }

    private static String withTier(String request, String tier) {
        return request.replace("{\"model\"", "{\"service_tier\":\"" + tier + "\",\"model\"");
    }

    @Test
    void flexRequest_estimatedAtFlex_billedAtTheFlexTheAnswerReports_exactly() throws Exception {
        upstream.answer(200, "application/json", chatAnswer("gpt-test-2026-01-01", "flex"));

        call(withTier(REQUEST, "flex"));

        UsageEvent event = theOneEvent();
        assertThat(event.getCostNanoUsd()).isEqualTo(11 * 75 + 7 * 300);
        assertThat(event.getServiceTier()).isEqualTo("flex");
        assertThat(event.getPriceVersion()).isEqualTo("v-test:flex");
        assertThat(event.getModel()).isEqualTo(MODEL);
        assertThat(event.getAnsweredModel()).isEqualTo("gpt-test-2026-01-01");
        assertThat(quota.reservedCosts).containsExactly(promptEstimate(REQUEST) * 75 + 16 * 300);
        assertThat(quota.settles).extracting(ScriptedQuota.Settle::costNanoUsd).containsExactly(11L * 75 + 7 * 300);
    }

    @Test
    void theAnswersTierWins_overTheRequests() throws Exception {
        // Asked for flex, served (and billed by OpenAI) at priority; OpenAI's 'default' is the standard tier.
        upstream.answer(200, "application/json", chatAnswer(MODEL, "priority"));
        call(withTier(REQUEST, "flex"));
        UsageEvent priority = sink.events.get(0);
        assertThat(priority.getCostNanoUsd()).isEqualTo(11 * 255 + 7 * 1020);
        assertThat(priority.getServiceTier()).isEqualTo("priority");

        upstream.answer(200, "application/json", chatAnswer(MODEL, "default"));
        call(withTier(REQUEST, "priority"));
        UsageEvent standard = sink.events.get(1);
        assertThat(standard.getCostNanoUsd()).isEqualTo(cost(11, 7));
        assertThat(standard.getServiceTier()).isEqualTo("standard");
        assertThat(standard.getPriceVersion()).isEqualTo("v-test");
        assertThat(standard.getAttributes()).doesNotContainKey("unpriced_tier");
    }

    @Test
    void aReportedTierWithoutAPrice_billedAtStandard_andFlagged() throws Exception {
        upstream.answer(200, "application/json", chatAnswer(MODEL, "scale"));

        call(REQUEST);

        UsageEvent event = theOneEvent();
        assertThat(event.getCostNanoUsd()).isEqualTo(cost(11, 7));
        assertThat(event.getServiceTier()).isEqualTo("standard");
        assertThat(event.getAttributes()).containsEntry("unpriced_tier", "scale");
    }

    @Test
    void streamedTier_fromTheChunks_isBilled() throws Exception {
        String chunk = "data: {\"model\":\"gpt-test-2026-01-01\",\"service_tier\":\"flex\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n";
        String usage = "data: {\"model\":\"gpt-test-2026-01-01\",\"service_tier\":\"flex\",\"choices\":[],"
                + "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n";
        upstream.answer(200, "text/event-stream", chunk, usage, DONE);

        call(withTier(STREAM_REQUEST, "flex"));

        UsageEvent event = theOneEvent();
        assertThat(event.getCostNanoUsd()).isEqualTo(12 * 75 + 3 * 300);
        assertThat(event.getServiceTier()).isEqualTo("flex");
        assertThat(event.getAnsweredModel()).isEqualTo("gpt-test-2026-01-01");
    }

    @Test
    void aRequestedTierWithoutAPrice_refusedUpFront_noUpstreamCall() throws Exception {
        proxy = OpenAiProxyHandler.builder()
                .authenticator(key -> Optional.of(CALLER))
                .prices((model, tier, at) -> tier == ServiceTier.STANDARD ? Optional.of(PRICE) : Optional.empty())
                .tokenCounter(tokens).quota(quota).keys(new UpstreamKeys("sk-service", null, null)).sink(sink)
                .metrics(new EdgeMetrics(new SimpleMeterRegistry(), sink)).upstream(upstream).build();

        RecordingExchange exchange = call(withTier(REQUEST, "flex"));

        assertThat(exchange.status).isEqualTo(400);
        JsonNode error = JSON.readTree(exchange.bodyText()).get("error");
        assertThat(error.path("code").asText()).isEqualTo("service_tier_not_priced");
        assertThat(error.path("param").asText()).isEqualTo("service_tier");
        assertThat(theOneEvent().getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(upstream.sent).isEmpty();
    }

    @Test
    void streamWithUsageChunk_relayedByteForByte_billedByItsUsage() throws Exception {
        upstream.answer(200, "text/event-stream", CHUNK_1, CHUNK_2, USAGE_CHUNK, DONE);

        RecordingExchange exchange = call(STREAM_REQUEST);

        assertThat(exchange.status).isEqualTo(200);
        assertThat(exchange.bodyText()).isEqualTo(CHUNK_1 + CHUNK_2 + USAGE_CHUNK + DONE);
        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(event.getStreamed()).isTrue();
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(event.getCostNanoUsd()).isEqualTo(cost(12, 3));
        assertThat(quota.settles).containsExactly(new ScriptedQuota.Settle("res-1", cost(12, 3), 15, event.getEventId()));
        assertThat(timeline).containsExactly("reserve", "event", "answered", "finished", "settle");
        // The edge asked for the usage chunk.
        JsonNode sent = JSON.readTree(upstream.sent.get(0).body());
        assertThat(sent.at("/stream_options/include_usage").asBoolean()).isTrue();
        assertThat(upstream.sent.get(0).headers()).containsEntry("Accept", "text/event-stream");
    }

    @Test
    void streamCutBeforeItsUsage_failed_billedTheEstimate() throws Exception {
        upstream.answer(200, "text/event-stream", CHUNK_1, CHUNK_2).cutAfterChunks();

        RecordingExchange exchange = call(STREAM_REQUEST);

        assertThat(exchange.bodyText()).isEqualTo(CHUNK_1 + CHUNK_2);
        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.FAILED);
        assertThat(event.getAttributes()).containsEntry("failure", "upstream_stream_cut");
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.ESTIMATED);
        long prompt = promptEstimate(STREAM_REQUEST);
        long completion = counted("Hel", "lo there");
        assertThat(event.getPromptTokens()).isEqualTo(prompt);
        assertThat(event.getCompletionTokens()).isEqualTo(completion);
        assertThat(event.getCostNanoUsd()).isEqualTo(cost(prompt, completion));
        assertThat(quota.settles).containsExactly(
                new ScriptedQuota.Settle("res-1", cost(prompt, completion), prompt + completion, event.getEventId()));
    }

    @Test
    void clientGoneMidStream_theStreamIsDrainedForItsUsage_cancelledAndBilledAsReported() throws Exception {
        upstream.answer(200, "text/event-stream", CHUNK_1, CHUNK_2, USAGE_CHUNK, DONE);
        RecordingExchange exchange = new RecordingExchange("tm_good", STREAM_REQUEST, timeline);
        exchange.clientLeavesAtWrite = 2;

        proxy.handle(exchange, CHAT);

        assertThat(exchange.bodyText()).isEqualTo(CHUNK_1);
        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.CANCELLED);
        assertThat(event.getHttpStatus()).isZero();
        assertThat(event.getAttributes()).containsEntry("cancelled", "client_disconnected").doesNotContainKey("drain");
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(event.getCostNanoUsd()).isEqualTo(cost(12, 3));
        assertThat(quota.settles).containsExactly(new ScriptedQuota.Settle("res-1", cost(12, 3), 15, event.getEventId()));
        assertThat(upstream.aborted).as("a drained stream is read to its usage, not aborted").isFalse();
    }

    @Test
    void clientGoneAndTheStreamEndsWithoutUsage_billedTheEstimateOfWhatWasStreamed() throws Exception {
        upstream.answer(200, "text/event-stream", CHUNK_1, CHUNK_2, DONE);
        RecordingExchange exchange = new RecordingExchange("tm_good", STREAM_REQUEST, timeline);
        exchange.clientLeavesAtWrite = 2;

        proxy.handle(exchange, CHAT);

        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.CANCELLED);
        assertThat(event.getAttributes()).containsEntry("drain", "upstream_ended");
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.ESTIMATED);
        long prompt = promptEstimate(STREAM_REQUEST);
        // The delta read while draining counts too.
        assertThat(event.getCostNanoUsd()).isEqualTo(cost(prompt, counted("Hel", "lo there")));
    }

    @Test
    void noKey_401_andNoEvent() {
        RecordingExchange exchange = new RecordingExchange(null, REQUEST, timeline);

        proxy.handle(exchange, CHAT);

        assertThat(exchange.status).isEqualTo(401);
        assertThat(sink.events).isEmpty();
        assertThat(timeline).doesNotContain("reserve");
    }

    @Test
    void unknownModel_oneRejectedEvent_beforeTheQuota() throws Exception {
        RecordingExchange exchange = call(REQUEST.replace(MODEL, "gpt-unpriced"));

        assertThat(exchange.status).isEqualTo(400);
        assertThat(JSON.readTree(exchange.bodyText()).at("/error/code").asText()).isEqualTo("model_not_found");
        UsageEvent event = theOneEvent();
        assertThat(event.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(event.getAttributes()).containsEntry("reject_reason", "model_not_found");
        assertThat(timeline).doesNotContain("reserve");
    }

    @Test
    void parameterOutOfBounds_400_andNoEventAtAll() {
        RecordingExchange exchange = call(REQUEST.replace("\"max_tokens\":16", "\"max_tokens\":-1"));

        assertThat(exchange.status).isEqualTo(400);
        assertThat(exchange.headers).doesNotContainKey("x-tokenmeter-event-id");
        assertThat(sink.events).isEmpty();
    }
}
