package dev.tokenmeter.edge;

import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.redis.EmbeddedRedisEngine;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static dev.tokenmeter.db.jooq.Tables.API_KEY;
import static dev.tokenmeter.db.jooq.Tables.PLAN;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 19's response cache (ADR 0074/0075) on real engines: the quota Redis, a second Redis for the cache (as
 * deployed: allkeys-lru under maxmemory), Kafka, Postgres, and the fake upstream.
 */
@ExtendWith(EnginesExtension.class)
class ResponseCacheIT {

    private static EmbeddedRedisEngine cacheRedis;

    @BeforeAll
    static void startCacheRedis() {
        cacheRedis = EmbeddedRedisEngine.launch();
        try (RedisClient client = RedisClient.create(cacheRedis.uri()); StatefulRedisConnection<String, String> c = client.connect()) {
            c.sync().configSet("maxmemory", "64mb");
            c.sync().configSet("maxmemory-policy", "allkeys-lru");
        }
    }

    @AfterAll
    static void stopCacheRedis() {
        cacheRedis.close();
    }

    private static EdgeTestBed bed(Engines engines, FakeOpenAi openAi) {
        // Keys not cached, so a policy changed in the database counts from the next call.
        return new EdgeTestBed(engines, openAi, Map.of("RESPONSE_CACHE_REDIS_URI", cacheRedis.uri(), "API_KEY_CACHE_TTL", "0s"));
    }

    /** The user's plan caches for 60 s, a hit billed {@code percent} of the full price. */
    private static void cachePlan(EdgeTestBed bed, EdgeTestBed.User user, int percent) {
        bed.db.update(PLAN).set(PLAN.RESPONSE_CACHE_TTL_SECONDS, 60).set(PLAN.CACHE_HIT_PRICE_PERCENT, percent)
                .where(PLAN.PLAN_ID.eq("plan-" + user.userId())).execute();
    }

    private static String deterministicChat(String text) {
        return "{\"model\":\"gpt-4o-mini\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":" + EdgeTestBed.quote(text) + "}]}";
    }

    private static String header(HttpResponse<?> r, String name) {
        return r.headers().firstValue(name).orElse(null);
    }

    @Test
    void aRepeatedDeterministicCallIsAnsweredFromTheCache_billedItsPlansShare_withHitHeaders(Engines engines) throws Exception {
        try (FakeOpenAi openAi = FakeOpenAi.start(); EdgeTestBed bed = bed(engines, openAi)) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000L);
            cachePlan(bed, user, 50);
            int before = openAi.requestCount();

            HttpResponse<String> miss = bed.post("/v1/chat/completions", user.key(), deterministicChat("cache me"));
            assertThat(miss.statusCode()).as(miss.body()).isEqualTo(200);
            assertThat(header(miss, "x-tokenmeter-cache")).isEqualTo("miss");
            // The same request with its keys in another order and other whitespace: the same entry.
            String reordered = "{ \"messages\" : [ {\"content\":\"cache me\", \"role\":\"user\"} ],\n \"temperature\": 0.0, \"model\":\"gpt-4o-mini\" }";
            HttpResponse<String> hit = bed.post("/v1/chat/completions", user.key(), reordered);
            assertThat(hit.statusCode()).as(hit.body()).isEqualTo(200);
            assertThat(header(hit, "x-tokenmeter-cache")).isEqualTo("hit");
            assertThat(Long.parseLong(header(hit, "x-tokenmeter-cache-age-ms"))).isBetween(0L, 60_000L);
            assertThat(header(hit, "age")).isNotNull();
            assertThat(hit.body()).as("the stored answer, byte for byte").isEqualTo(miss.body());
            assertThat(openAi.requestCount() - before).as("one upstream call").isEqualTo(1);

            List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(30));
            UsageEvent first = eventOf(events, miss);
            UsageEvent second = eventOf(events, hit);
            assertThat(first.getResponseCacheHit()).isFalse();
            assertThat(first.getUpstreamCostNanoUsd()).as("null: the upstream cost what was billed").isNull();
            assertThat(second.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
            assertThat(second.getResponseCacheHit()).isTrue();
            assertThat(second.getResponseCacheAgeMs()).isNotNull().isBetween(0L, 60_000L);
            assertThat(second.getUpstreamCostNanoUsd()).isZero();
            assertThat(second.getUpstreamRequestId()).isNull();
            assertThat(second.getPromptTokens()).isEqualTo(first.getPromptTokens());
            assertThat(second.getCompletionTokens()).isEqualTo(first.getCompletionTokens());
            assertThat(first.getCostNanoUsd()).isPositive();
            assertThat(second.getCostNanoUsd()).as("50 %% of the full price, rounded down").isEqualTo(first.getCostNanoUsd() * 50 / 100);
            long billed = first.getCostNanoUsd() + second.getCostNanoUsd();
            await("the quota counts what was billed").atMost(Duration.ofSeconds(10)).until(() -> bed.usedNanoUsd(user.userId()) == billed);

            // The entry lives in the cache's Redis, namespaced by tenant; the quota Redis has none.
            try (RedisClient c = RedisClient.create(cacheRedis.uri()); StatefulRedisConnection<String, String> conn = c.connect()) {
                assertThat(conn.sync().keys("rc:{" + user.tenantId() + "}:*")).as("one entry in the tenant's namespace").hasSize(1);
            }
            assertThat(bed.quotaRedis.connection().sync().keys("rc:*")).isEmpty();

            // The cache's statistics: one miss, one hit, and the hit's tokens and full upstream price as saved.
            String metrics = bed.client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(bed.adminUrl() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            String labels = "endpoint=\"/v1/chat/completions\",model=\"gpt-4o-mini\"";
            assertThat(metric(metrics, "edge_response_cache_lookups_total{" + labels + ",result=\"miss\"}")).isEqualTo(1);
            assertThat(metric(metrics, "edge_response_cache_lookups_total{" + labels + ",result=\"hit\"}")).isEqualTo(1);
            assertThat(metric(metrics, "edge_response_cache_saved_tokens_total{" + labels + "}"))
                    .isEqualTo(second.getPromptTokens() + second.getCompletionTokens());
            assertThat(metric(metrics, "edge_response_cache_saved_upstream_nano_usd_total{" + labels + "}"))
                    .as("the full price of the answer, which the miss paid").isEqualTo(first.getCostNanoUsd());
        }
    }

    /** The value of one sample line of a Prometheus scrape (whole numbers here), or -1 when absent. */
    private static long metric(String scrape, String series) {
        return scrape.lines().filter(l -> l.startsWith(series + " ")).findFirst()
                .map(l -> (long) Double.parseDouble(l.substring(series.length() + 1).trim())).orElse(-1L);
    }

    @Test
    void aStreamedHitGetsTheSseChunksWithTheUsageChunk(Engines engines) throws Exception {
        try (FakeOpenAi openAi = FakeOpenAi.start(); EdgeTestBed bed = bed(engines, openAi)) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000L);
            cachePlan(bed, user, 100);
            String body = "{\"model\":\"gpt-4o-mini\",\"seed\":7,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"stream me\"}]}";
            int before = openAi.requestCount();
            HttpResponse<String> miss = bed.post("/v1/chat/completions", user.key(), body);
            HttpResponse<String> hit = bed.post("/v1/chat/completions", user.key(), body);
            assertThat(header(miss, "x-tokenmeter-cache")).isEqualTo("miss");
            assertThat(header(hit, "x-tokenmeter-cache")).isEqualTo("hit");
            assertThat(header(hit, "content-type")).startsWith("text/event-stream");
            assertThat(hit.body()).isEqualTo(miss.body()).contains("data: ").contains("\"usage\":{").contains("data: [DONE]");
            assertThat(openAi.requestCount() - before).isEqualTo(1);

            List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(30));
            UsageEvent first = eventOf(events, miss);
            UsageEvent second = eventOf(events, hit);
            assertThat(second.getStreamed()).isTrue();
            assertThat(second.getResponseCacheHit()).isTrue();
            assertThat(second.getCostNanoUsd()).as("full price").isEqualTo(first.getCostNanoUsd()).isPositive();
            assertThat(second.getUpstreamCostNanoUsd()).isZero();
        }
    }

    @Test
    void onlyTheSameTenantsCacheableRequestsHit_andTheHeaderChoosesUseRefreshOrBypass(Engines engines) throws Exception {
        try (FakeOpenAi openAi = FakeOpenAi.start(); EdgeTestBed bed = bed(engines, openAi)) {
            EdgeTestBed.User alice = bed.newUser(1_000_000_000L);
            EdgeTestBed.User bob = bed.newUser(1_000_000_000L);
            EdgeTestBed.User carol = bed.newUser(1_000_000_000L); // her plan does not cache
            cachePlan(bed, alice, 0);
            cachePlan(bed, bob, 100);
            String request = deterministicChat("shared question");
            int before = openAi.requestCount();

            assertThat(header(bed.post("/v1/chat/completions", alice.key(), request), "x-tokenmeter-cache")).isEqualTo("miss");
            assertThat(header(bed.post("/v1/chat/completions", bob.key(), request), "x-tokenmeter-cache"))
                    .as("another tenant never reads alice's answer").isEqualTo("miss");
            assertThat(header(bed.post("/v1/chat/completions", carol.key(), request), "x-tokenmeter-cache"))
                    .as("cache off: no header").isNull();
            assertThat(openAi.requestCount() - before).isEqualTo(3);

            // Not deterministic (temperature 0.7, no seed): not cached, unless the key's policy says any.
            String creative = "{\"model\":\"gpt-4o-mini\",\"temperature\":0.7,\"messages\":[{\"role\":\"user\",\"content\":\"poem\"}]}";
            assertThat(header(bed.post("/v1/chat/completions", alice.key(), creative), "x-tokenmeter-cache")).isNull();
            bed.db.update(API_KEY).set(API_KEY.RESPONSE_CACHE, "any").where(API_KEY.API_KEY_ID.eq(alice.apiKeyId())).execute();
            assertThat(header(bed.post("/v1/chat/completions", alice.key(), creative), "x-tokenmeter-cache")).isEqualTo("miss");
            assertThat(header(bed.post("/v1/chat/completions", alice.key(), creative), "x-tokenmeter-cache")).isEqualTo("hit");

            int mid = openAi.requestCount();
            assertThat(header(send(bed, alice, request, "bypass"), "x-tokenmeter-cache")).isEqualTo("bypass");
            assertThat(header(send(bed, alice, request, "refresh"), "x-tokenmeter-cache")).isEqualTo("refresh");
            assertThat(header(send(bed, alice, request, "USE"), "x-tokenmeter-cache")).isEqualTo("hit");
            assertThat(openAi.requestCount() - mid).as("bypass and refresh went upstream, use did not").isEqualTo(2);
            HttpResponse<String> bad = send(bed, alice, request, "sometimes");
            assertThat(bad.statusCode()).isEqualTo(400);
            assertThat(ApiCalls.json(bad).get("error").get("param").asText()).isEqualTo("x-tokenmeter-cache");

            // alice's plan bills hits at 0 %: free, and the upstream cost 0 too.
            List<UsageEvent> hits = bed.awaitEvents(alice.userId(), 7, Duration.ofSeconds(30)).stream()
                    .filter(UsageEvent::getResponseCacheHit).toList();
            assertThat(hits).hasSize(2).allSatisfy(e -> {
                assertThat(e.getCostNanoUsd()).isZero();
                assertThat(e.getUpstreamCostNanoUsd()).isZero();
                assertThat(e.getPromptTokens()).isPositive();
            });
        }
    }

    /** The admin API sets a key's own cache: on where its plan does not cache, off where it does, null = the plan. */
    @Test
    void theAdminApiTurnsAKeysOwnCacheOnOrOff_whateverItsPlanSays(Engines engines) throws Exception {
        String token = "admin-token-for-the-response-cache-0123";
        try (FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("RESPONSE_CACHE_REDIS_URI", cacheRedis.uri(),
                     "API_KEY_CACHE_TTL", "30s", "ADMIN_TOKEN", token, "RESPONSE_CACHE_DEFAULT_TTL", "60s"))) {
            ApiCalls admin = new ApiCalls(bed.adminUrl());
            EdgeTestBed.User plain = bed.newUser(1_000_000_000L); // its plan does not cache
            EdgeTestBed.User cached = bed.newUser(1_000_000_000L);
            cachePlan(bed, cached, 100);
            String keyPath = "/admin/users/" + plain.userId() + "/keys/" + plain.apiKeyId();
            String request = deterministicChat("admin switch");

            assertThat(header(bed.post("/v1/chat/completions", plain.key(), request), "x-tokenmeter-cache")).isNull();
            HttpResponse<String> on = admin.send("PATCH", keyPath, token, "{\"response_cache\":\"on\"}");
            assertThat(on.statusCode()).as(on.body()).isEqualTo(200);
            assertThat(ApiCalls.json(on).get("response_cache").asText()).isEqualTo("on");
            // The key cache's TTL is 30 s: only the admin API's invalidation makes this call see the change.
            assertThat(header(bed.post("/v1/chat/completions", plain.key(), request), "x-tokenmeter-cache")).isEqualTo("miss");
            assertThat(header(bed.post("/v1/chat/completions", plain.key(), request), "x-tokenmeter-cache")).isEqualTo("hit");

            String cachedPath = "/admin/users/" + cached.userId() + "/keys/" + cached.apiKeyId();
            assertThat(admin.send("PATCH", cachedPath, token, "{\"response_cache\":\"off\"}").statusCode()).isEqualTo(200);
            assertThat(header(bed.post("/v1/chat/completions", cached.key(), request), "x-tokenmeter-cache"))
                    .as("off for this key although its plan caches").isNull();
            HttpResponse<String> cleared = admin.send("PATCH", cachedPath, token, "{\"response_cache\":null}");
            assertThat(ApiCalls.json(cleared).get("response_cache").isNull()).isTrue();
            assertThat(header(bed.post("/v1/chat/completions", cached.key(), request), "x-tokenmeter-cache"))
                    .as("null: the plan decides again").isEqualTo("miss");

            HttpResponse<String> bad = admin.send("PATCH", keyPath, token, "{\"response_cache\":\"always\"}");
            assertThat(bad.statusCode()).isEqualTo(400);
            assertThat(ApiCalls.json(bad).get("error").get("param").asText()).isEqualTo("response_cache");
            assertThat(bed.db.select(API_KEY.RESPONSE_CACHE).from(API_KEY).where(API_KEY.API_KEY_ID.eq(plain.apiKeyId()))
                    .fetchOne(API_KEY.RESPONSE_CACHE)).as("a refused change changes nothing").isEqualTo("on");
        }
    }

    @Test
    void aHundredIdenticalConcurrentCallsMakeOneUpstreamCall_andAHundredEvents(Engines engines) throws Exception { // issue 19
        try (FakeOpenAi openAi = FakeOpenAi.start(); EdgeTestBed bed = bed(engines, openAi)) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000L);
            cachePlan(bed, user, 100);
            // The upstream takes 1 s, so the other 99 arrive while the first is still out.
            String body = deterministicChat("everyone asks this [[fake:latency=1s]]");
            int before = openAi.requestCount();
            List<HttpResponse<String>> answers = atOnce(bed, user, body, 100);
            assertThat(answers).allSatisfy(r -> assertThat(r.statusCode()).as(r.body()).isEqualTo(200));
            assertThat(answers.stream().map(HttpResponse::body).distinct()).as("one answer for all").hasSize(1);
            assertThat(openAi.requestCount() - before).as("exactly one upstream call").isEqualTo(1);
            assertThat(answers.stream().filter(r -> "miss".equals(header(r, "x-tokenmeter-cache")))).hasSize(1);

            List<UsageEvent> events = bed.awaitEvents(user.userId(), 100, Duration.ofSeconds(60));
            assertThat(events).hasSize(100).allSatisfy(e -> assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED));
            assertThat(events.stream().map(UsageEvent::getEventId).distinct()).hasSize(100);
            assertThat(events.stream().filter(UsageEvent::getResponseCacheHit)).as("the followers are hits").hasSize(99);
            long billed = events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum();
            await("every reservation settled with what was billed").atMost(Duration.ofSeconds(20))
                    .until(() -> bed.usedNanoUsd(user.userId()) == billed && bed.reservedNanoUsd(user.userId()) == 0);
        }
    }

    @Test
    void whenTheLeaderFailsOneFollowerTakesOver_theOthersGetItsAnswer(Engines engines) throws Exception { // issue 19
        try (FakeOpenAi openAi = FakeOpenAi.start(); EdgeTestBed bed = bed(engines, openAi)) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000L);
            cachePlan(bed, user, 100);
            // The first call upstream hangs 2 s and is dropped (the leader fails); the next one answers after 1 s.
            openAi.enqueue(dev.tokenmeter.testkit.openai.Behavior.hang(Duration.ofSeconds(2)));
            String body = deterministicChat("fragile question [[fake:latency=1s]]");
            int before = openAi.requestCount();
            List<Integer> statuses = atOnce(bed, user, body, 10).stream().map(HttpResponse::statusCode).toList();
            assertThat(statuses.stream().filter(s -> s != 200)).as("only the leader's call fails").hasSize(1);
            assertThat(openAi.requestCount() - before).as("the failed lead, then one follower's").isEqualTo(2);
            List<UsageEvent> events = bed.awaitEvents(user.userId(), 10, Duration.ofSeconds(60));
            assertThat(events.stream().filter(UsageEvent::getResponseCacheHit)).hasSize(8);
            assertThat(events.stream().filter(e -> e.getOutcome() == Outcome.FAILED)).hasSize(1);
            await("no reservation left open").atMost(Duration.ofSeconds(20)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        }
    }

    /** {@code n} calls with this body sent at once; their answers. */
    private static List<HttpResponse<String>> atOnce(EdgeTestBed bed, EdgeTestBed.User user, String body, int n) throws Exception {
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<HttpResponse<String>>> calls = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                calls.add(pool.submit(() -> bed.post("/v1/chat/completions", user.key(), body)));
            }
            List<HttpResponse<String>> answers = new ArrayList<>();
            for (Future<HttpResponse<String>> f : calls) {
                answers.add(f.get(60, TimeUnit.SECONDS));
            }
            return answers;
        }
    }

    private static HttpResponse<String> send(EdgeTestBed bed, EdgeTestBed.User user, String body, String mode) throws Exception {
        return bed.client.send(bed.sdkRequest("/v1/chat/completions", user.key(), body).header("x-tokenmeter-cache", mode).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static UsageEvent eventOf(List<UsageEvent> events, HttpResponse<?> r) {
        String id = header(r, "x-tokenmeter-event-id");
        return events.stream().filter(e -> e.getEventId().equals(id)).findFirst().orElseThrow(() -> new AssertionError("no event " + id));
    }
}
