package dev.tokenmeter.edge.pricing;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.openai.Usage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.MODEL_PRICE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 16 (ADR 0068), end to end on the real engines and the fake upstream: dated snapshots priced through the
 * seeded aliases, an alias added through the admin API, and each service tier billed at its own row exactly —
 * whole and streamed answers, the proxy and the metering API.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PriceCardIT {

    private static final String ADMIN = "admin-" + UUID.randomUUID();
    /** gpt-4o-mini@2024-07-18 (V3): standard input, cached input, output nano-USD per token. */
    private static final long[] STANDARD = {150, 75, 600};
    /** Tier rows this test adds for gpt-4o-mini (test numbers, whole nano-USD; not OpenAI's list). */
    private static final long[] FLEX = {70, 35, 290};
    private static final long[] PRIORITY = {250, 125, 1000};

    private FakeOpenAi openAi;
    private EdgeTestBed bed;
    private ApiCalls admin;
    private ApiCalls api;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of("ADMIN_TOKEN", ADMIN));
        admin = new ApiCalls(bed.adminUrl());
        api = new ApiCalls(bed.baseUrl());
        // Seeded as the schema's owner with a past effective_from (the admin API only takes prices from now on).
        addTier("flex", FLEX);
        addTier("priority", PRIORITY);
        bed.app.priceBook().reload();
    }

    private void addTier(String tier, long[] p) {
        bed.db.insertInto(MODEL_PRICE).set(MODEL_PRICE.MODEL, "gpt-4o-mini").set(MODEL_PRICE.SERVICE_TIER, tier)
                .set(MODEL_PRICE.EFFECTIVE_FROM, OffsetDateTime.of(2024, 7, 18, 0, 0, 0, 0, ZoneOffset.UTC))
                .set(MODEL_PRICE.INPUT_NANO_USD_PER_TOKEN, p[0]).set(MODEL_PRICE.CACHED_INPUT_NANO_USD_PER_TOKEN, p[1])
                .set(MODEL_PRICE.OUTPUT_NANO_USD_PER_TOKEN, p[2]).set(MODEL_PRICE.PRICE_VERSION, "gpt-4o-mini@2024-07-18:" + tier)
                .execute();
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    private static long cost(long[] price, Usage u) {
        return (u.promptTokens() - u.cachedPromptTokens()) * price[0] + u.cachedPromptTokens() * price[1] + u.completionTokens() * price[2];
    }

    private static String chat(String model, String text, String tier, boolean stream) {
        String body = stream ? EdgeTestBed.chatStream(model, text) : EdgeTestBed.chat(model, text);
        return tier == null ? body : body.replace("\"model\":", "\"service_tier\":\"" + tier + "\",\"model\":");
    }

    /** One call through the proxy; its one event. */
    private UsageEvent call(User user, String body) throws Exception {
        int before = bed.events(user.userId()).size();
        HttpResponse<String> r = bed.post("/v1/chat/completions", user.key(), body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        List<UsageEvent> events = bed.awaitEvents(user.userId(), before + 1, Duration.ofSeconds(20));
        assertThat(events).as("one event per call").hasSize(before + 1);
        return events.getLast();
    }

    @Test
    void aDatedSnapshot_isPricedByItsFamilysRow_exactly_wholeAndStreamed() throws Exception {
        User user = bed.newUser(Money.usd(5));
        for (boolean stream : new boolean[] {false, true}) {
            String body = chat("gpt-4o-mini-2024-07-18", "snapshot [[fake:cached=4]] " + stream, null, stream);
            UsageEvent e = call(user, body);
            Usage u = FakeOpenAi.usageFor("/v1/chat/completions", body);
            assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
            assertThat(e.getCostNanoUsd()).as("stream=" + stream).isEqualTo(cost(STANDARD, u));
            assertThat(e.getPriceVersion()).isEqualTo("gpt-4o-mini@2024-07-18");
            assertThat(e.getModel()).isEqualTo("gpt-4o-mini-2024-07-18");
            assertThat(e.getAnsweredModel()).isEqualTo("gpt-4o-mini-2024-07-18");
            assertThat(e.getServiceTier()).isEqualTo("standard");
        }
        // The family name: requested as sent, answered with the snapshot, both in the event.
        UsageEvent family = call(user, chat("gpt-4o-mini", "family", null, false));
        assertThat(family.getModel()).isEqualTo("gpt-4o-mini");
        assertThat(family.getAnsweredModel()).isEqualTo("gpt-4o-mini-2024-07-18");
    }

    @Test
    void eachTier_isBilledAtItsOwnRow_exactly_wholeAndStreamed() throws Exception {
        User user = bed.newUser(Money.usd(5));
        Map<String, long[]> tiers = Map.of("flex", FLEX, "priority", PRIORITY, "default", STANDARD, "auto", STANDARD);
        for (Map.Entry<String, long[]> t : tiers.entrySet()) {
            for (boolean stream : new boolean[] {false, true}) {
                String body = chat("gpt-4o-mini-2024-07-18", "tier " + t.getKey() + " [[fake:cached=3]] [[fake:completion=21]]", t.getKey(), stream);
                UsageEvent e = call(user, body);
                Usage u = FakeOpenAi.usageFor("/v1/chat/completions", body);
                String billed = t.getKey().equals("flex") || t.getKey().equals("priority") ? t.getKey() : "standard";
                assertThat(e.getServiceTier()).as(t.getKey() + " stream=" + stream).isEqualTo(billed);
                assertThat(e.getCostNanoUsd()).as(t.getKey() + " stream=" + stream).isEqualTo(cost(t.getValue(), u));
                assertThat(e.getPriceVersion()).isEqualTo("gpt-4o-mini@2024-07-18" + (billed.equals("standard") ? "" : ":" + billed));
            }
        }
        // The answer's tier is billed, not the request's: asked for flex, served at priority.
        String body = chat("gpt-4o-mini", "served at priority [[fake:tier=priority]]", "flex", true);
        UsageEvent e = call(user, body);
        assertThat(e.getServiceTier()).isEqualTo("priority");
        assertThat(e.getCostNanoUsd()).isEqualTo(cost(PRIORITY, FakeOpenAi.usageFor("/v1/chat/completions", body)));
        // The quota settled what was billed: every reservation closed, the month's spend is the events' sum.
        await("reservations settled").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        long billedSum = bed.events(user.userId()).stream().mapToLong(UsageEvent::getCostNanoUsd).sum();
        assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(billedSum);
    }

    @Test
    void aTierTheCardLacks_isRefusedUpFront_andAnUnknownModelStill400() throws Exception {
        User user = bed.newUser(Money.usd(5));
        int upstreamCalls = openAi.requests().size();
        HttpResponse<String> r = bed.post("/v1/chat/completions", user.key(), chat("gpt-4.1", "flex?", "flex", false));
        assertThat(r.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(r).at("/error/code").asText()).isEqualTo("service_tier_not_priced");
        HttpResponse<String> unknown = bed.post("/v1/chat/completions", user.key(), chat("nosuch-model-2099-01-01", "who?", null, false));
        assertThat(unknown.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(unknown).at("/error/code").asText()).isEqualTo("model_not_found");
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(20));
        assertThat(events).extracting(UsageEvent::getOutcome).containsExactly(Outcome.REJECTED, Outcome.REJECTED);
        assertThat(events).extracting(UsageEvent::getCostNanoUsd).containsExactly(0L, 0L);
        assertThat(openAi.requests()).as("nothing went upstream").hasSize(upstreamCalls);
    }

    @Test
    void anAliasAddedThroughTheAdminApi_pricesMatchingNamesFromItsTime() throws Exception {
        String pattern = "{\"alias\":\"gpt-4o-mini-*\",\"model\":\"gpt-4o-mini\",\"effective_from\":\"" + Instant.now() + "\"}";
        HttpResponse<String> added = admin.send("POST", "/admin/model-aliases", ADMIN, pattern);
        assertThat(added.statusCode()).as(added.body()).isEqualTo(201);
        assertThat(admin.send("POST", "/admin/model-aliases", ADMIN, pattern).statusCode()).as("same row twice").isEqualTo(409);
        HttpResponse<String> unpriced = admin.send("POST", "/admin/model-aliases", ADMIN,
                "{\"alias\":\"x-*\",\"model\":\"no-such-model\",\"effective_from\":\"" + Instant.now() + "\"}");
        assertThat(unpriced.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(unpriced).at("/error/param").asText()).isEqualTo("model");

        User user = bed.newUser(Money.usd(5));
        String body = chat("gpt-4o-mini-2099-01-01", "a future snapshot", null, false);
        UsageEvent e = call(user, body);
        assertThat(e.getPriceVersion()).isEqualTo("gpt-4o-mini@2024-07-18");
        assertThat(e.getCostNanoUsd()).isEqualTo(cost(STANDARD, FakeOpenAi.usageFor("/v1/chat/completions", body)));
        // The seeded exact alias still beats the pattern, and a name with its own row beats both.
        assertThat(bed.app.priceBook().priceAt("gpt-4o-mini-2024-07-18", Instant.now())).get()
                .extracting(ModelPrice::priceVersion).isEqualTo("gpt-4o-mini@2024-07-18");
        assertThat(bed.app.priceBook().priceAt("gpt-4o-mini", ServiceTier.FLEX, Instant.now())).get()
                .extracting(ModelPrice::priceVersion).isEqualTo("gpt-4o-mini@2024-07-18:flex");
    }

    /** ADR 0085: the model the upstream answered with prices the call when it stands for another priced model. */
    @Test
    void anAnsweredModelOtherThanTheRequested_isPricedByItsOwnRow_exactly() throws Exception {
        // gpt-4o-2024-05-13 has its own price at OpenAI ($5/$15 per 1M, no cached price); seeded here as the owner.
        bed.db.insertInto(MODEL_PRICE).set(MODEL_PRICE.MODEL, "gpt-4o-2024-05-13")
                .set(MODEL_PRICE.EFFECTIVE_FROM, OffsetDateTime.of(2024, 5, 13, 0, 0, 0, 0, ZoneOffset.UTC))
                .set(MODEL_PRICE.INPUT_NANO_USD_PER_TOKEN, 5000L).set(MODEL_PRICE.OUTPUT_NANO_USD_PER_TOKEN, 15000L)
                .set(MODEL_PRICE.PRICE_VERSION, "gpt-4o-2024-05-13@2024-05-13").onConflictDoNothing().execute();
        bed.app.priceBook().reload();
        long[] own = {5000, 5000, 15000};
        long[] gpt4o = {2500, 1250, 10000};
        User user = bed.newUser(Money.usd(5));
        for (boolean stream : new boolean[] {false, true}) {
            String body = chat("gpt-4o-mini", "served by another [[fake:model=gpt-4o-2024-05-13]] [[fake:cached=2]] " + stream, null, stream);
            UsageEvent e = call(user, body);
            assertThat(e.getModel()).isEqualTo("gpt-4o-mini");
            assertThat(e.getAnsweredModel()).isEqualTo("gpt-4o-2024-05-13");
            assertThat(e.getPriceVersion()).as("stream=" + stream).isEqualTo("gpt-4o-2024-05-13@2024-05-13");
            assertThat(e.getCostNanoUsd()).as("stream=" + stream).isEqualTo(cost(own, FakeOpenAi.usageFor("/v1/chat/completions", body)));
        }
        // An answered snapshot that is an alias (V16) is priced by the alias' model.
        String aliased = chat("gpt-4o-mini", "served by gpt-4o [[fake:model=gpt-4o-2024-11-20]]", null, false);
        UsageEvent a = call(user, aliased);
        assertThat(a.getPriceVersion()).isEqualTo("gpt-4o@2024-10-01");
        assertThat(a.getCostNanoUsd()).isEqualTo(cost(gpt4o, FakeOpenAi.usageFor("/v1/chat/completions", aliased)));
        // An answered name without a price: billed as requested, flagged for finance.
        String unknown = chat("gpt-4o-mini", "served by a mystery [[fake:model=mystery-model-1]]", null, false);
        UsageEvent u = call(user, unknown);
        assertThat(u.getPriceVersion()).isEqualTo("gpt-4o-mini@2024-07-18");
        assertThat(u.getCostNanoUsd()).isEqualTo(cost(STANDARD, FakeOpenAi.usageFor("/v1/chat/completions", unknown)));
        assertThat(u.getAttributes()).containsEntry("unpriced_answered_model", "true");
        assertThat(a.getAttributes()).doesNotContainKey("unpriced_answered_model");
        // The quota settled what was billed.
        await("reservations settled").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(bed.events(user.userId()).stream().mapToLong(UsageEvent::getCostNanoUsd).sum());
    }

    @Test
    void theMeteringApi_billsTheTierTheAppServerReports() throws Exception {
        User user = bed.newUser(Money.usd(5));
        HttpResponse<String> reserved = api.send("POST", "/v1/metering/reservations", user.key(),
                "{\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"flex\",\"estimated_prompt_tokens\":1000,\"max_completion_tokens\":500}");
        assertThat(reserved.statusCode()).as(reserved.body()).isEqualTo(201);
        JsonNode r = ApiCalls.json(reserved);
        assertThat(r.get("estimated_cost_nano_usd").asLong()).as("estimated at flex").isEqualTo(1000 * FLEX[0] + 500 * FLEX[2]);
        String id = ApiCalls.pathSegment(r.get("reservation_id").asText());

        HttpResponse<String> bad = api.send("POST", "/v1/metering/reservations/" + id + "/commit", user.key(),
                "{\"prompt_tokens\":1,\"service_tier\":\"cheap\"}");
        assertThat(bad.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(bad).at("/error/param").asText()).isEqualTo("service_tier");

        HttpResponse<String> committed = api.send("POST", "/v1/metering/reservations/" + id + "/commit", user.key(),
                "{\"prompt_tokens\":800,\"cached_prompt_tokens\":200,\"completion_tokens\":300,\"service_tier\":\"priority\","
                        + "\"answered_model\":\"gpt-4o-mini-2024-07-18\"}");
        assertThat(committed.statusCode()).as(committed.body()).isEqualTo(200);
        long cost = 600 * PRIORITY[0] + 200 * PRIORITY[1] + 300 * PRIORITY[2];
        assertThat(ApiCalls.json(committed).get("cost_nano_usd").asLong()).isEqualTo(cost);
        assertThat(ApiCalls.json(committed).get("service_tier").asText()).isEqualTo("priority");
        UsageEvent e = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20)).getLast();
        assertThat(e.getCostNanoUsd()).isEqualTo(cost);
        assertThat(e.getServiceTier()).isEqualTo("priority");
        assertThat(e.getAnsweredModel()).isEqualTo("gpt-4o-mini-2024-07-18");
        assertThat(e.getPriceVersion()).isEqualTo("gpt-4o-mini@2024-07-18:priority");

        // Batch ingest: each item's reported tier prices it; an unpriced tier is billed at standard and flagged.
        String at = Instant.now().minusSeconds(60).truncatedTo(java.time.temporal.ChronoUnit.MILLIS).toString();
        String batch = "{\"events\":[{\"event_id\":\"" + UUID.randomUUID() + "\",\"occurred_at\":\"" + at + "\","
                + "\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"flex\",\"answered_model\":\"gpt-4o-mini-2024-07-18\","
                + "\"prompt_tokens\":1000,\"cached_prompt_tokens\":100,\"completion_tokens\":10},"
                + "{\"event_id\":\"" + UUID.randomUUID() + "\",\"occurred_at\":\"" + at + "\","
                + "\"model\":\"gpt-4.1\",\"service_tier\":\"flex\",\"prompt_tokens\":10,\"completion_tokens\":1}]}";
        HttpResponse<String> ingested = api.send("POST", "/v1/metering/usage:batch", user.key(), batch);
        assertThat(ingested.statusCode()).as(ingested.body()).isEqualTo(200);
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 3, Duration.ofSeconds(20));
        UsageEvent flex = events.stream().filter(x -> "flex".equals(x.getServiceTier())).findFirst().orElseThrow();
        assertThat(flex.getCostNanoUsd()).isEqualTo(900 * FLEX[0] + 100 * FLEX[1] + 10 * FLEX[2]);
        assertThat(flex.getAnsweredModel()).isEqualTo("gpt-4o-mini-2024-07-18");
        UsageEvent unpriced = events.stream().filter(x -> x.getModel().equals("gpt-4.1")).findFirst().orElseThrow();
        assertThat(unpriced.getServiceTier()).isEqualTo("standard");
        assertThat(unpriced.getCostNanoUsd()).isEqualTo(10 * 2000 + 8000);
        assertThat(unpriced.getAttributes()).containsEntry("unpriced_tier", "flex");
    }
}
