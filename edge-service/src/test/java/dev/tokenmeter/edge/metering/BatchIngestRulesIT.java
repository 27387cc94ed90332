package dev.tokenmeter.edge.metering;

import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 14, finding 4: the batch API let the caller choose what it pays. One case per rule: {@code occurred_at} no
 * older than BATCH_MAX_EVENT_AGE (6d by default, below the aggregator's 7d dedup retention) and not in the future
 * beyond the clock skew; PERSONAL_KEY only for a user with a personal key; REJECTED only with zero tokens; a batch
 * counts against the user's rate limits. A refused batch publishes nothing.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BatchIngestRulesIT {

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls api;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of("PERSONAL_KEY_MASTER_KEY", java.util.Base64.getEncoder().encodeToString(new byte[32])));
        api = new ApiCalls(bed.baseUrl());
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private static String item(String callerId, Instant occurredAt, String extra) {
        return "{\"event_id\":\"" + callerId + "\",\"occurred_at\":\"" + occurredAt.truncatedTo(ChronoUnit.MILLIS)
                + "\",\"model\":\"gpt-4o-mini\"" + extra + "}";
    }

    private HttpResponse<String> batch(EdgeTestBed.User user, String... items) throws Exception {
        return api.send("POST", "/v1/metering/usage:batch", user.key(), "{\"events\":[" + String.join(",", items) + "]}");
    }

    private static void assertRefused(HttpResponse<String> r, String naming) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
        assertThat(ApiCalls.json(r).get("error").get("message").asText()).contains(naming);
    }

    /** Sends one good event and waits for it: the user's events on the topic are then all there are. */
    private java.util.List<UsageEvent> eventsAfterBarrier(EdgeTestBed.User user, int expectedBefore) throws Exception {
        HttpResponse<String> r = batch(user, item(UUID.randomUUID().toString(), Instant.now().minusSeconds(10), ",\"prompt_tokens\":1"));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return bed.awaitEvents(user.userId(), expectedBefore + 1, Duration.ofSeconds(20)).subList(0, expectedBefore);
    }

    @Test
    void occurredAt_olderThanTheMaxEventAge_is400NamingTheLimit() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        Instant now = Instant.now();
        assertRefused(batch(user, item(UUID.randomUUID().toString(), now.minus(Duration.ofDays(8)), ",\"prompt_tokens\":100")),
                "older than BATCH_MAX_EVENT_AGE (6d)");
        // Older than the limit by a little: still refused; within it: accepted.
        assertRefused(batch(user, item(UUID.randomUUID().toString(), now.minus(Duration.ofDays(6)).minusSeconds(60), ",\"prompt_tokens\":100")),
                "BATCH_MAX_EVENT_AGE");
        HttpResponse<String> within = batch(user, item(UUID.randomUUID().toString(), now.minus(Duration.ofDays(5)), ",\"prompt_tokens\":100"));
        assertThat(within.statusCode()).as(within.body()).isEqualTo(200);
        assertThat(eventsAfterBarrier(user, 1)).hasSize(1);
    }

    @Test
    void occurredAt_inTheFutureBeyondTheClockSkew_is400() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        assertRefused(batch(user, item(UUID.randomUUID().toString(), Instant.now().plus(Duration.ofHours(1)), ",\"prompt_tokens\":100")),
                "is in the future (more than 5m of clock skew)");
        HttpResponse<String> skewed = batch(user, item(UUID.randomUUID().toString(), Instant.now().plusSeconds(30), ",\"prompt_tokens\":100"));
        assertThat(skewed.statusCode()).as("a little clock skew is fine: " + skewed.body()).isEqualTo(200);
        assertThat(eventsAfterBarrier(user, 1)).hasSize(1);
    }

    @Test
    void personalKey_onlyForAUserWithAPersonalKey() throws Exception {
        EdgeTestBed.User without = bed.newUser(1_000_000_000L);
        String personal = ",\"prompt_tokens\":100,\"key_source\":\"PERSONAL_KEY\"";
        assertRefused(batch(without, item(UUID.randomUUID().toString(), Instant.now().minusSeconds(60), personal)),
                "key_source PERSONAL_KEY, but this user has no personal key");
        assertThat(eventsAfterBarrier(without, 0)).isEmpty();

        EdgeTestBed.User with = bed.newUser(1_000_000_000L);
        bed.db.insertInto(PERSONAL_PROVIDER_KEY).set(PERSONAL_PROVIDER_KEY.USER_ID, with.userId())
                .set(PERSONAL_PROVIDER_KEY.KEY_CIPHERTEXT, new byte[32]).set(PERSONAL_PROVIDER_KEY.KEY_NONCE, new byte[12])
                .set(PERSONAL_PROVIDER_KEY.MASTER_KEY_ID, "k1").set(PERSONAL_PROVIDER_KEY.KEY_LAST4, "abcd").execute();
        HttpResponse<String> ok = batch(with, item(UUID.randomUUID().toString(), Instant.now().minusSeconds(60), personal));
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
    }

    @Test
    void rejected_onlyWithZeroTokens() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        assertRefused(batch(user, item(UUID.randomUUID().toString(), Instant.now().minusSeconds(60),
                ",\"outcome\":\"REJECTED\",\"completion_tokens\":5000")), "a REJECTED event must have zero tokens");
        HttpResponse<String> ok = batch(user, item(UUID.randomUUID().toString(), Instant.now().minusSeconds(60), ",\"outcome\":\"REJECTED\""));
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
        assertThat(eventsAfterBarrier(user, 1)).singleElement().satisfies(e -> assertThat(e.getCostNanoUsd()).isZero());
    }

    @Test
    void batch_countsAgainstTheUsersRequestLimit() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L, 2);
        HttpResponse<String> first = batch(user, item(UUID.randomUUID().toString(), Instant.now().minusSeconds(60), ",\"prompt_tokens\":1"),
                item(UUID.randomUUID().toString(), Instant.now().minusSeconds(60), ",\"prompt_tokens\":1"));
        assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
        HttpResponse<String> second = batch(user, item(UUID.randomUUID().toString(), Instant.now().minusSeconds(60), ",\"prompt_tokens\":1"));
        assertThat(second.statusCode()).as(second.body()).isEqualTo(429);
        assertThat(second.headers().firstValue("retry-after")).isPresent();
        assertThat(ApiCalls.json(second).get("error").get("code").asText()).isEqualTo("rate_limit_exceeded");
    }
}
