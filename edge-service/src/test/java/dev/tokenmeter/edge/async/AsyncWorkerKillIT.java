package dev.tokenmeter.edge.async;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import io.lettuce.core.api.sync.RedisCommands;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 19: a worker killed mid-job. Two edges from the SHIPPED jar share one job stream; edge A takes 40 jobs and
 * is SIGKILLed while its workers hold some of them (upstream calls under way, entries pending on its consumer).
 * Edge B claims them with XAUTOCLAIM after ASYNC_CLAIM_IDLE and runs them and the rest: every job ends succeeded,
 * exactly one distinct event per job, its id the job id, and the quota settles to the sum billed (ADR 0083).
 * The in-process test bed only seeds users and reads the events (its own edge runs no workers).
 */
@ExtendWith(EnginesExtension.class)
class AsyncWorkerKillIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int JOBS = 40;

    @TempDir
    Path work;

    @Test
    void jobsHeldByAKilledEdgeAreClaimedByTheOtherAndEachIsAnsweredAndBilledOnce(Engines engines) throws Exception {
        String stream = Names.unique("async-kill");
        try (FakeOpenAi openAi = FakeOpenAi.builder().latency(Duration.ofMillis(1500)).build();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("ASYNC_STREAM", stream, "ASYNC_WORKERS", "0"))) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000L);
            ShippedEdge a = edge("a", engines, bed, openAi, stream);
            ShippedEdge b = null;
            try {
                String aBase = a.base();
                List<String> jobs = new ArrayList<>();
                for (int i = 0; i < JOBS; i++) {
                    HttpResponse<String> r = bed.client.send(HttpRequest.newBuilder(URI.create(aBase + "/v1/async/chat/completions"))
                            .header("Authorization", "Bearer " + user.key()).header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofString(EdgeTestBed.chat("gpt-4o-mini", "job " + i))).build(),
                            HttpResponse.BodyHandlers.ofString());
                    assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
                    jobs.add(JSON.readTree(r.body()).path("id").asText());
                }
                RedisCommands<String, String> redis = bed.quotaRedis.connection().sync();
                // A's workers hold jobs: their entries pending on its consumer, their upstream calls under way.
                await("edge A holds jobs mid-call").atMost(Duration.ofSeconds(60))
                        .until(() -> redis.xpending(stream, JobStore.GROUP).getCount() >= 4 && openAi.requestCount() >= 4);
                a.jvm().kill();
                long heldAtKill = redis.xpending(stream, JobStore.GROUP).getCount();
                assertThat(heldAtKill).as("jobs pending on the killed edge").isPositive();

                b = edge("b", engines, bed, openAi, stream);
                String bBase = b.base();
                for (String id : jobs) {
                    await("job " + id + " answered").atMost(Duration.ofSeconds(120)).until(() -> {
                        HttpResponse<String> r = bed.client.send(HttpRequest.newBuilder(URI.create(bBase + "/v1/async/jobs/" + id))
                                .header("Authorization", "Bearer " + user.key()).build(), HttpResponse.BodyHandlers.ofString());
                        JsonNode job = JSON.readTree(r.body());
                        return job.path("status").asText().equals("succeeded");
                    });
                }
                assertThat(b.jvm().logContains("claimed")).as("edge B claimed the killed edge's jobs").isTrue();

                List<UsageEvent> events = bed.awaitEvents(user.userId(), JOBS, Duration.ofSeconds(60));
                Map<String, List<UsageEvent>> byId = events.stream().collect(Collectors.groupingBy(UsageEvent::getEventId));
                assertThat(byId.keySet()).as("one distinct event per job, its id the job id").isEqualTo(Set.copyOf(jobs));
                assertThat(events).allSatisfy(e -> assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED));
                long billed = byId.values().stream().mapToLong(list -> list.get(0).getCostNanoUsd()).sum();
                await("the quota settled to what was billed, each job once").atMost(Duration.ofSeconds(30))
                        .until(() -> bed.usedNanoUsd(user.userId()) == billed && bed.reservedNanoUsd(user.userId()) == 0);
                assertThat(redis.xlen(stream)).as("every entry acknowledged").isZero();
                System.out.printf("AsyncWorkerKillIT: %d jobs, %d held by the killed edge, %d events (%d distinct), %d upstream calls%n",
                        JOBS, heldAtKill, events.size(), byId.size(), openAi.requestCount());
            } finally {
                a.jvm().kill();
                if (b != null) {
                    b.jvm().kill();
                }
            }
        }
    }

    private ShippedEdge edge(String name, Engines engines, EdgeTestBed bed, FakeOpenAi openAi, String stream) throws Exception {
        return ShippedEdge.launch(name, Map.of("ASYNC_STREAM", stream, "ASYNC_WORKERS", "8", "ASYNC_CLAIM_IDLE", "3s"),
                engines, bed, openAi, work).ready();
    }
}
