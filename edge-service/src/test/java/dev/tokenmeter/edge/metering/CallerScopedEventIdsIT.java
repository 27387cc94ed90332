package dev.tokenmeter.edge.metering;

import com.fasterxml.jackson.databind.JsonNode;
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
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 14, finding 5: the ledger and the aggregator dedup on the event id alone, so a caller-chosen id must not be
 * stored as given — one tenant could pre-submit an id another tenant later sends and have that call dropped. The
 * stored id is derived from (user, caller id) ({@link CallerEventIds}): the same caller id from two users reaches the
 * topic as two events (both billed), from one user as one id, however often it is sent.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CallerScopedEventIdsIT {

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls api;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of());
        api = new ApiCalls(bed.baseUrl());
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private HttpResponse<String> batch(EdgeTestBed.User user, String callerId, long prompt) throws Exception {
        String item = "{\"event_id\":\"" + callerId + "\",\"occurred_at\":\"" + Instant.now().minusSeconds(60).truncatedTo(ChronoUnit.MILLIS)
                + "\",\"model\":\"gpt-4o-mini\",\"prompt_tokens\":" + prompt + ",\"completion_tokens\":5}";
        HttpResponse<String> r = api.send("POST", "/v1/metering/usage:batch", user.key(), "{\"events\":[" + item + "]}");
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return r;
    }

    @Test
    void sameCallerId_fromTwoUsers_billsBoth() throws Exception {
        EdgeTestBed.User first = bed.newUser(1_000_000_000L);
        EdgeTestBed.User second = bed.newUser(1_000_000_000L);
        String callerId = UUID.randomUUID().toString();

        // The first tenant "pre-submits" the id; the second tenant's own call with it must still be billed.
        JsonNode a = ApiCalls.json(batch(first, callerId, 100)).get("data").get(0);
        JsonNode b = ApiCalls.json(batch(second, callerId, 200)).get("data").get(0);
        assertThat(b.get("duplicate").asBoolean()).isFalse();
        assertThat(a.get("caller_event_id").asText()).isEqualTo(callerId);
        assertThat(a.get("event_id").asText()).isEqualTo(CallerEventIds.stored(first.userId(), callerId));
        assertThat(b.get("event_id").asText()).isEqualTo(CallerEventIds.stored(second.userId(), callerId))
                .isNotEqualTo(a.get("event_id").asText());

        UsageEvent ea = bed.awaitEvents(first.userId(), 1, Duration.ofSeconds(20)).getFirst();
        UsageEvent eb = bed.awaitEvents(second.userId(), 1, Duration.ofSeconds(20)).getFirst();
        assertThat(ea.getEventId()).isEqualTo(a.get("event_id").asText());
        assertThat(eb.getEventId()).isEqualTo(b.get("event_id").asText());
        assertThat(ea.getCostNanoUsd()).isPositive();
        assertThat(eb.getCostNanoUsd()).as("the second tenant's call is billed").isPositive();
        assertThat(eb.getAttributes()).containsEntry("caller_event_id", callerId);
    }

    @Test
    void sameCallerId_twiceFromOneUser_isOneStoredId() throws Exception {
        EdgeTestBed.User user = bed.newUser(1_000_000_000L);
        String callerId = UUID.randomUUID().toString();
        String stored = ApiCalls.json(batch(user, callerId, 100)).get("data").get(0).get("event_id").asText();
        JsonNode again = ApiCalls.json(batch(user, callerId.toUpperCase(), 100));
        assertThat(again.get("duplicates").asInt()).as("the same id, in any letter case, is a duplicate").isEqualTo(1);
        assertThat(again.get("data").get(0).get("event_id").asText()).isEqualTo(stored);

        // Past the 24 h marker window a resend is published again — with the same stored id, so the ledger keeps one.
        bed.quotaRedis.connection().sync().keys("tm:meter:{u:" + user.userId() + "}:seen:*")
                .forEach(k -> bed.quotaRedis.connection().sync().del(k));
        batch(user, callerId, 100);
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(20));
        assertThat(events).extracting(UsageEvent::getEventId).containsOnly(stored);
    }
}
