package dev.tokenmeter.edge;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
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

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 20's burst: past MAX_CALLS_IN_FLIGHT a proxied call is shed at once with 503 {@code server_overloaded} and
 * {@code retry-after}, before its key is checked (no event, nothing upstream), instead of queueing behind the calls
 * in flight; the calls in flight finish, and the edge serves again as soon as one ends.
 */
@ExtendWith(EnginesExtension.class)
class EdgeOverloadIT {

    @Test
    void pastMaxCallsInFlightACallIsShedAtOnceWithRetryAfter(Engines engines) throws Exception {
        try (FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("MAX_CALLS_IN_FLIGHT", "2"));
             ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000L);
            int upstreamBefore = openAi.requestCount();
            List<Future<HttpResponse<String>>> slow = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                slow.add(pool.submit(() -> bed.post("/v1/chat/completions", user.key(),
                        EdgeTestBed.chat("gpt-4o-mini", "slow [[fake:latency=4s]]"))));
            }
            await("both slow calls reached the upstream").atMost(Duration.ofSeconds(20))
                    .until(() -> openAi.requestCount() - upstreamBefore == 2);

            for (int i = 0; i < 3; i++) {
                long start = System.nanoTime();
                HttpResponse<String> shed = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "hi"));
                long millis = (System.nanoTime() - start) / 1_000_000;
                assertThat(shed.statusCode()).as(shed.body()).isEqualTo(503);
                JsonNode error = ApiCalls.json(shed).get("error");
                assertThat(error.get("code").asText()).isEqualTo("server_overloaded");
                assertThat(error.get("type").asText()).isEqualTo("server_error");
                assertThat(shed.headers().firstValue("retry-after")).hasValue("1");
                assertThat(shed.headers().firstValue("x-should-retry")).hasValue("true");
                assertThat(shed.headers().firstValue("x-tokenmeter-event-id")).as("nothing ran: no event").isEmpty();
                assertThat(millis).as("answered without waiting for the calls in flight").isLessThan(3_000);
            }
            assertThat(openAi.requestCount() - upstreamBefore).as("shed calls never reach the upstream").isEqualTo(2);

            List<String> answered = new ArrayList<>();
            for (Future<HttpResponse<String>> f : slow) {
                HttpResponse<String> r = f.get(30, TimeUnit.SECONDS);
                assertThat(r.statusCode()).as("the calls in flight finish").isEqualTo(200);
                answered.add(r.headers().firstValue("x-tokenmeter-event-id").orElseThrow());
            }
            // A call counts until its settle is done, which runs just after its answer is out: retry until one is served.
            List<HttpResponse<String>> after = new ArrayList<>();
            await("a call is served again once the calls in flight ended").atMost(Duration.ofSeconds(10))
                    .pollInterval(Duration.ofMillis(100)).until(() -> {
                        HttpResponse<String> r = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "hi"));
                        after.add(r);
                        return r.statusCode() == 200;
                    });
            assertThat(after).as("only sheds before it").allMatch(r -> r.statusCode() == 200 || r.statusCode() == 503);
            answered.add(after.getLast().headers().firstValue("x-tokenmeter-event-id").orElseThrow());
            assertThat(bed.awaitEvents(user.userId(), 3, Duration.ofSeconds(20))).extracting(e -> e.getEventId().toString())
                    .as("one event per call that ran, none for a shed call").containsExactlyInAnyOrderElementsOf(answered);
        }
    }
}
