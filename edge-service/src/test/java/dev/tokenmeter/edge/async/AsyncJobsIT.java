package dev.tokenmeter.edge.async;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.Behavior;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import io.lettuce.core.Range;
import io.lettuce.core.StreamMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 19's async jobs (ADR 0083) on real engines — the quota Redis (stream, consumer group, job hashes), Kafka,
 * Postgres — with the fake upstream: a job is checked and reserved like a sync call, answered 202 at once, run by the
 * edge's worker through the same metered path, billed once under its job id, readable by its own user only; upstream
 * 429/5xx are retried with backoff and a job failing every attempt is dead-lettered with its reservation released;
 * a tenant's full queue answers 429 with retry-after.
 */
@ExtendWith(EnginesExtension.class)
class AsyncJobsIT {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static EdgeTestBed bed(Engines engines, FakeOpenAi openAi, Map<String, String> extra) {
        Map<String, String> env = new java.util.HashMap<>(Map.of("ASYNC_STREAM", Names.unique("async"), "ASYNC_RETRY_BACKOFF", "50ms",
                "ASYNC_MAX_ATTEMPTS", "3", "API_KEY_CACHE_TTL", "0s"));
        env.putAll(extra);
        return new EdgeTestBed(engines, openAi, env);
    }

    private static HttpResponse<String> get(EdgeTestBed bed, String path, String key) throws Exception {
        return bed.client.send(HttpRequest.newBuilder(URI.create(bed.baseUrl() + path)).header("Authorization", "Bearer " + key).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static JsonNode awaitEnded(EdgeTestBed bed, EdgeTestBed.User user, String jobId) {
        JsonNode[] last = new JsonNode[1];
        await("job " + jobId + " ended").atMost(Duration.ofSeconds(30)).until(() -> {
            HttpResponse<String> r = get(bed, "/v1/async/jobs/" + jobId, user.key());
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            last[0] = JSON.readTree(r.body());
            String status = last[0].path("status").asText();
            return !status.equals("queued") && !status.equals("running");
        });
        return last[0];
    }

    private static String enqueue(EdgeTestBed bed, EdgeTestBed.User user, String path, String body) throws Exception {
        HttpResponse<String> accepted = bed.post(path, user.key(), body);
        assertThat(accepted.statusCode()).as(accepted.body()).isEqualTo(202);
        JsonNode job = JSON.readTree(accepted.body());
        assertThat(job.path("status").asText()).isEqualTo("queued");
        assertThat(accepted.headers().firstValue("x-tokenmeter-event-id")).as("the job id is its call's event id").contains(job.path("id").asText());
        return job.path("id").asText();
    }

    @Test
    void aJobIsAcceptedAtOnce_runByAWorker_billedOnceUnderItsId_andReadableByItsUserOnly(Engines engines) throws Exception {
        String streamName = Names.unique("async");
        try (FakeOpenAi openAi = FakeOpenAi.start(); EdgeTestBed bed = bed(engines, openAi, Map.of("ASYNC_STREAM", streamName,
                "ASYNC_CALLBACK_SECRET", "master-callback-secret-for-the-test", "ASYNC_CALLBACK_ALLOW_PRIVATE", "true"))) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000L);
            EdgeTestBed.User other = bed.newUser(1_000_000_000L);

            String chatJob = enqueue(bed, user, "/v1/async/chat/completions", EdgeTestBed.chat("gpt-4o-mini", "run me later"));
            String embeddingJob = enqueue(bed, user, "/v1/async/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":\"embed me later\"}");

            JsonNode chat = awaitEnded(bed, user, chatJob);
            assertThat(chat.path("status").asText()).as(chat.toString()).isEqualTo("succeeded");
            assertThat(chat.path("endpoint").asText()).isEqualTo("/v1/chat/completions");
            assertThat(chat.path("response").path("status_code").asInt()).isEqualTo(200);
            assertThat(chat.path("response").path("body").path("choices").isArray()).as(chat.toString()).isTrue();
            assertThat(chat.path("attempts").asInt()).isEqualTo(1);
            JsonNode embedding = awaitEnded(bed, user, embeddingJob);
            assertThat(embedding.path("status").asText()).as(embedding.toString()).isEqualTo("succeeded");
            assertThat(embedding.path("response").path("body").path("data").isArray()).isTrue();

            // Only its own user reads a job: another user, a malformed id and an unknown one get the same 404.
            assertThat(get(bed, "/v1/async/jobs/" + chatJob, other.key()).statusCode()).isEqualTo(404);
            assertThat(get(bed, "/v1/async/jobs/not-a-job", user.key()).statusCode()).isEqualTo(404);
            assertThat(get(bed, "/v1/async/jobs/" + java.util.UUID.randomUUID(), user.key()).statusCode()).isEqualTo(404);
            assertThat(get(bed, "/v1/async/jobs/" + chatJob, "tm_wrong").statusCode()).isEqualTo(401);

            // One SUCCEEDED event per job, its id the job's, on the sync endpoint, marked async; the quota settled to it.
            List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(30));
            assertThat(events).extracting(UsageEvent::getEventId).containsExactlyInAnyOrder(chatJob, embeddingJob);
            assertThat(events).allSatisfy(e -> {
                assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
                assertThat(e.getAttributes()).containsEntry("async", "true");
                assertThat(e.getCostNanoUsd()).isPositive();
                assertThat(e.getReservationId()).isNotNull();
            });
            assertThat(events).extracting(UsageEvent::getEndpoint).containsExactlyInAnyOrder("/v1/chat/completions", "/v1/embeddings");
            long billed = events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum();
            await("the quota settled to what was billed").atMost(Duration.ofSeconds(10))
                    .until(() -> bed.usedNanoUsd(user.userId()) == billed && bed.reservedNanoUsd(user.userId()) == 0);
            assertThat(openAi.requestCount()).as("each job went upstream once").isEqualTo(2);

            // Checked like the sync route: an unknown model is refused at once (400 and its REJECTED event), a stream too.
            HttpResponse<String> unknown = bed.post("/v1/async/chat/completions", user.key(), EdgeTestBed.chat("no-such-model", "x"));
            assertThat(unknown.statusCode()).as(unknown.body()).isEqualTo(400);
            HttpResponse<String> stream = bed.post("/v1/async/chat/completions", user.key(), EdgeTestBed.chatStream("gpt-4o-mini", "x"));
            assertThat(stream.statusCode()).as(stream.body()).isEqualTo(400);
            assertThat(JSON.readTree(stream.body()).path("error").path("param").asText()).isEqualTo("stream");
            List<UsageEvent> all = bed.awaitEvents(user.userId(), 4, Duration.ofSeconds(30));
            assertThat(all).filteredOn(e -> e.getOutcome() == Outcome.REJECTED).hasSize(2);
            assertThat(openAi.requestCount()).isEqualTo(2);

            // A callback: the ended job's JSON, signed like the alert webhooks with the key's own secret.
            java.util.concurrent.BlockingQueue<com.sun.net.httpserver.HttpExchange> received = new java.util.concurrent.LinkedBlockingQueue<>();
            java.util.concurrent.ConcurrentHashMap<com.sun.net.httpserver.HttpExchange, byte[]> bodies = new java.util.concurrent.ConcurrentHashMap<>();
            com.sun.net.httpserver.HttpServer receiver = com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
            receiver.createContext("/hook", ex -> {
                bodies.put(ex, ex.getRequestBody().readAllBytes());
                ex.sendResponseHeaders(204, -1);
                ex.close();
                received.add(ex);
            });
            receiver.start();
            try {
                String hook = "http://127.0.0.1:" + receiver.getAddress().getPort() + "/hook?token=abc";
                HttpResponse<String> accepted = bed.client.send(bed.sdkRequest("/v1/async/chat/completions", user.key(),
                        EdgeTestBed.chat("gpt-4o-mini", "call me back")).header("x-tokenmeter-callback-url", hook).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertThat(accepted.statusCode()).as(accepted.body()).isEqualTo(202);
                String hooked = JSON.readTree(accepted.body()).path("id").asText();
                com.sun.net.httpserver.HttpExchange delivery = received.poll(30, java.util.concurrent.TimeUnit.SECONDS);
                assertThat(delivery).as("the callback arrived").isNotNull();
                byte[] body = bodies.get(delivery);
                assertThat(delivery.getRequestMethod()).isEqualTo("POST");
                assertThat(delivery.getRequestURI().getQuery()).isEqualTo("token=abc");
                assertThat(delivery.getRequestHeaders().getFirst("Tokenmeter-Delivery")).isEqualTo(hooked);
                JsonNode secret = JSON.readTree(get(bed, "/v1/async/callback-secret", user.key()).body());
                assertThat(dev.tokenmeter.webhook.WebhookSignature.verify(secret.path("secret").asText(),
                        delivery.getRequestHeaders().getFirst("Tokenmeter-Signature"), body, System.currentTimeMillis() / 1000,
                        Duration.ofMinutes(5))).as("signed with the key's secret").isTrue();
                assertThat(dev.tokenmeter.webhook.WebhookSignature.verify(JSON.readTree(get(bed, "/v1/async/callback-secret", other.key()).body())
                        .path("secret").asText(), delivery.getRequestHeaders().getFirst("Tokenmeter-Signature"), body,
                        System.currentTimeMillis() / 1000, Duration.ofMinutes(5))).as("another key's secret does not verify it").isFalse();
                JsonNode payload = JSON.readTree(body);
                assertThat(payload.path("id").asText()).isEqualTo(hooked);
                assertThat(payload.path("status").asText()).isEqualTo("succeeded");
                assertThat(payload.path("response").path("body").path("choices").isArray()).isTrue();
                await("the callback's outcome recorded").atMost(Duration.ofSeconds(10))
                        .until(() -> JSON.readTree(get(bed, "/v1/async/jobs/" + hooked, user.key()).body()).path("callback").asText().equals("delivered"));
            } finally {
                receiver.stop(0);
            }
            // A callback URL out of its bounds: 400, nothing queued, no event.
            for (String bad : List.of("ftp://example.com/x", "http://user:pw@example.com/x", "not a url", "https://example.com/" + "a".repeat(2048))) {
                HttpResponse<String> refused = bed.client.send(bed.sdkRequest("/v1/async/chat/completions", user.key(),
                        EdgeTestBed.chat("gpt-4o-mini", "x")).header("x-tokenmeter-callback-url", bad).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(refused.statusCode()).as(bad + ": " + refused.body()).isEqualTo(400);
                assertThat(JSON.readTree(refused.body()).path("error").path("param").asText()).isEqualTo("x-tokenmeter-callback-url");
            }
            assertThat(bed.awaitEvents(user.userId(), 5, Duration.ofSeconds(30))).as("only the hooked job's event was added").hasSize(5);
            assertThat(openAi.requestCount()).isEqualTo(3);

            // Every finished entry was acknowledged and deleted: nothing is left queued or pending.
            assertThat(bed.quotaRedis.connection().sync().xlen(streamName)).isZero();
        }
    }

    @Test
    void upstream429And5xxAreRetried_aJobFailingEveryAttemptIsDeadLettered_andAFullQueueAnswers429(Engines engines) throws Exception {
        String streamName = Names.unique("async");
        try (FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = bed(engines, openAi, Map.of("ASYNC_STREAM", streamName, "ASYNC_WORKERS", "1", "ASYNC_MAX_QUEUED_PER_TENANT", "2"))) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000L);

            // A 429 then a 503, then the answer: one job, three upstream attempts, one SUCCEEDED event.
            openAi.enqueue(Behavior.status(429));
            openAi.enqueue(Behavior.status(503));
            String retried = enqueue(bed, user, "/v1/async/chat/completions", EdgeTestBed.chat("gpt-4o-mini", "retry me"));
            JsonNode ok = awaitEnded(bed, user, retried);
            assertThat(ok.path("status").asText()).as(ok.toString()).isEqualTo("succeeded");
            assertThat(ok.path("attempts").asInt()).isEqualTo(3);
            assertThat(openAi.requestCount()).isEqualTo(3);

            // 503 on every attempt: dead, a dead letter with its reason, one FAILED event, the reservation released.
            openAi.enqueue(Behavior.status(503));
            openAi.enqueue(Behavior.status(503));
            openAi.enqueue(Behavior.status(503));
            String dead = enqueue(bed, user, "/v1/async/chat/completions", EdgeTestBed.chat("gpt-4o-mini", "fail me"));
            JsonNode failed = awaitEnded(bed, user, dead);
            assertThat(failed.path("status").asText()).as(failed.toString()).isEqualTo("dead");
            assertThat(failed.path("reason").asText()).isEqualTo("upstream_status_503 after 3 attempts");
            assertThat(failed.path("response").path("status_code").asInt()).isEqualTo(503);
            List<StreamMessage<String, String>> letters = bed.quotaRedis.connection().sync().xrange(streamName + ":dead", Range.create("-", "+"));
            assertThat(letters).hasSize(1);
            assertThat(letters.get(0).getBody()).containsEntry("id", dead).containsEntry("reason", "upstream_status_503 after 3 attempts")
                    .containsEntry("user", user.userId());

            List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(30));
            assertThat(events).extracting(UsageEvent::getEventId).containsExactlyInAnyOrder(retried, dead);
            UsageEvent deadEvent = events.stream().filter(e -> e.getEventId().equals(dead)).findFirst().orElseThrow();
            assertThat(deadEvent.getOutcome()).isEqualTo(Outcome.FAILED);
            assertThat(deadEvent.getCostNanoUsd()).isZero();
            long billed = events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum();
            await("the dead job's reservation released").atMost(Duration.ofSeconds(10))
                    .until(() -> bed.reservedNanoUsd(user.userId()) == 0 && bed.usedNanoUsd(user.userId()) == billed);

            // One worker busy on a slow answer, one job queued behind it: the tenant's two places are taken.
            openAi.enqueue(Behavior.latency(Duration.ofSeconds(3)));
            String slow = enqueue(bed, user, "/v1/async/chat/completions", EdgeTestBed.chat("gpt-4o-mini", "slow"));
            String queued = enqueue(bed, user, "/v1/async/chat/completions", EdgeTestBed.chat("gpt-4o-mini", "behind"));
            long reservedBefore = bed.reservedNanoUsd(user.userId());
            HttpResponse<String> full = bed.post("/v1/async/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "one too many"));
            assertThat(full.statusCode()).as(full.body()).isEqualTo(429);
            assertThat(bed.reservedNanoUsd(user.userId())).as("the refused job's reservation released").isEqualTo(reservedBefore);
            assertThat(full.headers().firstValue("retry-after")).contains("2");
            assertThat(full.headers().firstValue("x-tokenmeter-event-id")).as("nothing ran: no event").isEmpty();
            String busy = metrics(bed);
            assertThat(metric(busy, "edge_async_queue_depth")).as("two jobs queued or running").isEqualTo(2.0);
            assertThat(metric(busy, "edge_async_oldest_job_age_seconds")).isBetween(0.0, 60.0);
            assertThat(awaitEnded(bed, user, slow).path("status").asText()).isEqualTo("succeeded");
            assertThat(awaitEnded(bed, user, queued).path("status").asText()).isEqualTo("succeeded");
            // Places come back as jobs end.
            String after = enqueue(bed, user, "/v1/async/chat/completions", EdgeTestBed.chat("gpt-4o-mini", "room again"));
            assertThat(awaitEnded(bed, user, after).path("status").asText()).isEqualTo("succeeded");
            assertThat(bed.awaitEvents(user.userId(), 5, Duration.ofSeconds(30))).hasSize(5);
            assertThat(bed.quotaRedis.connection().sync().xlen(streamName)).as("every entry acknowledged and deleted").isZero();
            String done = metrics(bed);
            assertThat(metric(done, "edge_async_queue_depth")).isZero();
            assertThat(metric(done, "edge_async_jobs_total{status=\"dead\"}")).isEqualTo(1.0);
            assertThat(metric(done, "edge_async_jobs_total{status=\"succeeded\"}")).isEqualTo(4.0);
        }
    }

    private static String metrics(EdgeTestBed bed) throws Exception {
        return bed.client.send(HttpRequest.newBuilder(URI.create(bed.adminUrl() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
    }

    /** The value of the sample named exactly {@code series} (name and labels as Prometheus prints them). */
    private static double metric(String scrape, String series) {
        return scrape.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1).trim()))
                .findFirst().orElseThrow(() -> new AssertionError(series + " not in /metrics"));
    }
}
