package dev.tokenmeter.edge;

import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Issue 4: stopping the edge lets the calls under way finish and bill, and takes no new ones. */
@ExtendWith(EnginesExtension.class)
class EdgeShutdownIT {

    @Test
    void callsUnderWayWhenTheServerStopsAreAnsweredAndBilled(Engines engines) throws Exception {
        try (FakeOpenAi slowUpstream = FakeOpenAi.builder().latency(Duration.ofMillis(1500)).build();
             EdgeTestBed bed = new EdgeTestBed(engines, slowUpstream, Map.of());
             ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
            User user = bed.newUser(Money.usd(5));
            List<Future<HttpResponse<String>>> underWay = List.of(
                    callers.submit(() -> bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "one"))),
                    callers.submit(() -> bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chatStream("gpt-4o-mini", "two"))));
            await("both calls reached the upstream").atMost(Duration.ofSeconds(10)).until(() -> slowUpstream.requestCount() == 2);

            String edgeUrl = bed.baseUrl();
            long stopStarted = System.nanoTime();
            bed.app.server().close();
            Duration stopTook = Duration.ofNanos(System.nanoTime() - stopStarted);

            for (Future<HttpResponse<String>> call : underWay) {
                HttpResponse<String> answer = call.get();
                assertThat(answer.statusCode()).as("a call under way at shutdown is answered").isEqualTo(200);
                assertThat(answer.body()).isNotBlank();
            }
            assertThat(stopTook).as("the stop waited for the calls under way").isGreaterThan(Duration.ofMillis(500));
            assertThat(bed.reservedNanoUsd(user.userId())).as("reservations settled before the stop returned").isZero();
            assertThat(bed.usedNanoUsd(user.userId())).as("both calls settled against the credit").isPositive();

            // After the stop nothing is taken: the port is closed.
            assertThat(callers.submit(() -> {
                try {
                    return bed.client.send(HttpRequest.newBuilder(URI.create(edgeUrl + "/v1/chat/completions"))
                            .header("Authorization", "Bearer " + user.key()).header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofString(EdgeTestBed.chat("gpt-4o-mini", "too late"))).build(),
                            HttpResponse.BodyHandlers.discarding()).statusCode();
                } catch (java.io.IOException refused) {
                    return -1;
                }
            }).get()).isEqualTo(-1);

            List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(20));
            assertThat(events).hasSize(2).allSatisfy(e -> {
                assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
                assertThat(e.getCostNanoUsd()).isPositive();
            });
        }
    }
}
