package dev.tokenmeter.edge.metering;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 4, "Metering API": reserve, commit, release and batch ingest on real Redis, Postgres and Kafka, with
 * decisions by the Redis quota engine.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MeteringApiIT {

    /** gpt-4o-mini@2024-07-18 from the seed migration V3: input, cached input, output nano-USD per token. */
    private static final long IN = 150, CACHED = 75, OUT = 600;

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls api;
    private RedisClient redisClient;
    private StatefulRedisConnection<String, String> redis;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of());
        api = new ApiCalls(bed.baseUrl());
        redisClient = RedisClient.create(engines.redis().uri());
        redis = redisClient.connect();
    }

    @AfterAll
    void stop() {
        redis.close();
        redisClient.shutdown();
        bed.close();
        openAi.close();
    }

    private String reserve(EdgeTestBed.User user) throws Exception {
        HttpResponse<String> r = api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini\",\"estimated_prompt_tokens\":1000,\"max_completion_tokens\":500}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
        assertThat(r.headers().firstValue("x-ratelimit-remaining-requests")).isPresent();
        assertThat(r.headers().firstValue("x-ratelimit-limit-tokens")).isPresent();
        return ApiCalls.json(r).get("reservation_id").asText();
    }

    /** Sends a one-event batch for {@code user} and waits for it: every earlier event of the user is on the topic by then. */
    private void barrier(EdgeTestBed.User user) throws Exception {
        String id = UUID.randomUUID().toString();
        HttpResponse<String> r = api.send("POST", "/v1/metering/usage:batch", user.key(), "{\"events\":[" + item(id, 1, 0, 1) + "]}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        await("barrier event").atMost(Duration.ofSeconds(20))
                .until(() -> bed.events(user.userId()).stream().anyMatch(e -> e.getEventId().equals(CallerEventIds.stored(user.userId(), id))));
    }

    private static String item(String eventId, long prompt, long cached, long completion) {
        return "{\"event_id\":\"" + eventId + "\",\"occurred_at\":\"" + Instant.now().minusSeconds(60).truncatedTo(ChronoUnit.MILLIS)
                + "\",\"model\":\"gpt-4o-mini\",\"prompt_tokens\":" + prompt + ",\"cached_prompt_tokens\":" + cached
                + ",\"completion_tokens\":" + completion + "}";
    }

    @Test
    void reserveThenCommit_publishesExactlyOneEvent_andASecondCommitReturnsTheSameEventId() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        String reservationId = reserve(user);
        assertThat(bed.quota.reservedNanoUsd(user.userId())).isEqualTo(1000 * IN + 500 * OUT);

        String usage = "{\"prompt_tokens\":800,\"cached_prompt_tokens\":200,\"completion_tokens\":300,\"reasoning_tokens\":100}";
        HttpResponse<String> first = api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/commit", user.key(), usage);
        assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
        long cost = 600 * IN + 200 * CACHED + 300 * OUT;
        assertThat(ApiCalls.json(first).get("cost_nano_usd").asLong()).isEqualTo(cost);
        String eventId = ApiCalls.json(first).get("event_id").asText();
        assertThat(eventId).isEqualTo(MeteringApi.commitEventId(reservationId));
        assertThat(first.headers().firstValue("x-tokenmeter-event-id")).contains(eventId);

        HttpResponse<String> again = api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/commit", user.key(), usage);
        assertThat(again.statusCode()).isEqualTo(200);
        assertThat(ApiCalls.json(again).get("event_id").asText()).isEqualTo(eventId);
        assertThat(ApiCalls.json(again).get("already_committed").asBoolean()).isTrue();

        barrier(user);
        List<UsageEvent> events = bed.events(user.userId()).stream().filter(e -> e.getReservationId() != null).toList();
        assertThat(events).as("one event for two commits").hasSize(1);
        UsageEvent e = events.getFirst();
        assertThat(e.getEventId()).isEqualTo(eventId);
        assertThat(e.getCostNanoUsd()).isEqualTo(cost);
        assertThat(e.getPromptTokens()).isEqualTo(800);
        assertThat(e.getReasoningTokens()).isEqualTo(100);
        assertThat(e.getKeySource()).isEqualTo(KeySource.SERVICE_CREDIT);
        assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(e.getPriceVersion()).isNotBlank();
        assertThat(bed.quota.usedNanoUsd(user.userId())).as("settled once").isEqualTo(cost);
        assertThat(bed.quota.reservedNanoUsd(user.userId())).isZero();
    }

    @Test
    void release_givesTheReservationBack_once_andARelasedReservationCannotBeCommitted() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        String reservationId = reserve(user);
        HttpResponse<String> released = api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/release", user.key(), null);
        assertThat(released.statusCode()).as(released.body()).isEqualTo(200);
        assertThat(bed.quota.reservedNanoUsd(user.userId())).isZero();
        assertThat(api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/release", user.key(), null).statusCode()).isEqualTo(404);
        HttpResponse<String> commit = api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/commit", user.key(),
                "{\"prompt_tokens\":1}");
        assertThat(commit.statusCode()).isEqualTo(404);
        assertThat(ApiCalls.json(commit).at("/error/code").asText()).isEqualTo("reservation_not_found");
    }

    @Test
    void anotherUsersReservation_isNotFound_andBadKeysOrModelsAreRefused() throws Exception {
        EdgeTestBed.User a = bed.newUser(1_000_000_000L);
        EdgeTestBed.User b = bed.newUser(1_000_000_000L);
        String reservationId = reserve(a);
        assertThat(api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/commit", b.key(), "{\"prompt_tokens\":1}")
                .statusCode()).isEqualTo(404);
        assertThat(api.send("POST", "/v1/metering/reservations/" + ApiCalls.pathSegment(reservationId) + "/release", b.key(), null).statusCode()).isEqualTo(404);
        HttpResponse<String> noKey = api.send("POST", "/v1/metering/reservations", null, "{\"model\":\"gpt-4o-mini\"}");
        assertThat(noKey.statusCode()).isEqualTo(401);
        assertThat(ApiCalls.json(noKey).at("/error/type").asText()).isEqualTo("invalid_request_error");
        HttpResponse<String> unknown = api.send("POST", "/v1/metering/reservations", a.key(), "{\"model\":\"no-such-model\"}");
        assertThat(unknown.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(unknown).at("/error/code").asText()).isEqualTo("model_not_found");
        bed.revoke(b);
    }

    @Test
    void exhaustedCredit_rejectsTheReservation_with429_andPublishesOneRejectedEvent() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000L);
        HttpResponse<String> r = api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini\",\"estimated_prompt_tokens\":1000,\"max_completion_tokens\":500}");
        assertThat(r.statusCode()).isEqualTo(429);
        assertThat(ApiCalls.json(r).at("/error/code").asText()).isEqualTo("insufficient_quota");
        String eventId = r.headers().firstValue("x-tokenmeter-event-id").orElseThrow();
        await("rejected event").atMost(Duration.ofSeconds(20))
                .until(() -> bed.events(user.userId()).stream().anyMatch(e -> e.getEventId().equals(eventId)));
        assertThat(bed.events(user.userId()).getFirst().getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(bed.events(user.userId()).getFirst().getCostNanoUsd()).isZero();
    }

    @Test
    void batch_isIdempotentByEventId_aResentBatchChangesNothing() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        List<String> ids = new ArrayList<>();
        StringBuilder items = new StringBuilder();
        for (int i = 0; i < 5; i++) {
            String id = UUID.randomUUID().toString();
            ids.add(id);
            items.append(i == 0 ? "" : ",").append(item(id, 100 + i, i, 10 * i));
        }
        String batch = "{\"events\":[" + items + "]}";
        // Stored ids are scoped to the user (issue 14, finding 5): the same for every resend.
        List<String> stored = ids.stream().map(id -> CallerEventIds.stored(user.userId(), id)).toList();
        HttpResponse<String> first = api.send("POST", "/v1/metering/usage:batch", user.key(), batch);
        assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
        assertThat(ApiCalls.json(first).get("published").asInt()).isEqualTo(5);
        HttpResponse<String> resent = api.send("POST", "/v1/metering/usage:batch", user.key(), batch);
        assertThat(resent.statusCode()).isEqualTo(200);
        assertThat(ApiCalls.json(resent).get("published").asInt()).isZero();
        assertThat(ApiCalls.json(resent).get("duplicates").asInt()).isEqualTo(5);
        barrier(user);
        List<UsageEvent> events = bed.events(user.userId()).stream().filter(e -> stored.contains(e.getEventId())).toList();
        assertThat(events).extracting(UsageEvent::getEventId).containsExactlyElementsOf(stored);
        assertThat(events.get(2).getCostNanoUsd()).isEqualTo((102 - 2) * IN + 2 * CACHED + 20 * OUT);

        // Past the Redis window (markers gone) a resend is published again: same ids, identical events, so the
        // ledger's dedup by event id (billing-sink) keeps one of each.
        redis.sync().keys("tm:meter:{u:" + user.userId() + "}:seen:*").forEach(k -> redis.sync().del(k));
        HttpResponse<String> late = api.send("POST", "/v1/metering/usage:batch", user.key(), batch);
        assertThat(ApiCalls.json(late).get("published").asInt()).isEqualTo(5);
        barrier(user);
        List<UsageEvent> all = bed.events(user.userId()).stream().filter(e -> stored.contains(e.getEventId())).toList();
        assertThat(all).hasSize(10);
        assertThat(all.subList(5, 10)).as("a re-publication is the same event, byte for byte").isEqualTo(all.subList(0, 5));
    }

    @Test
    void batch_withInvalidEvents_is400_namingEveryProblem_andPublishesNothing() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        String good = UUID.randomUUID().toString();
        String batch = "{\"events\":[" + item(good, 10, 0, 1) + "," + item("not-a-uuid", 10, 0, 1) + ","
                + item(UUID.randomUUID().toString(), 10, 20, 1) + "]}";
        HttpResponse<String> r = api.send("POST", "/v1/metering/usage:batch", user.key(), batch);
        assertThat(r.statusCode()).isEqualTo(400);
        JsonNode error = ApiCalls.json(r).get("error");
        assertThat(error.get("message").asText()).contains("events[1]: eventId must be a UUID")
                .contains("events[2]: cachedPromptTokens (20) exceeds promptTokens (10)");
        barrier(user);
        assertThat(bed.events(user.userId())).noneMatch(e -> e.getEventId().equals(CallerEventIds.stored(user.userId(), good)));
    }
}
