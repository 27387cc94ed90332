package dev.tokenmeter.edge;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
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

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Issue 4: concurrent calls by one user at the edge of their credit never overspend by more than one estimate. */
@ExtendWith(EnginesExtension.class)
class EdgeCreditEdgeIT {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void concurrentCallsAtTheEdgeOfTheCreditStayWithinOneEstimate(Engines engines) throws Exception {
        try (FakeOpenAi openAi = FakeOpenAi.start(); EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of())) {
            String body = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"count to three\"}]}";
            long promptEstimate = 3 + 4 + 3; // "count to three" is 3 o200k tokens
            long estimate = promptEstimate * 150 + 20 * 600;
            long credit = estimate * 10 + estimate / 2;
            User user = bed.newUser(credit);
            int calls = 40;
            List<Future<HttpResponse<String>>> futures = new ArrayList<>();
            try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                for (int i = 0; i < calls; i++) {
                    futures.add(pool.submit(() -> bed.post("/v1/chat/completions", user.key(), body)));
                }
            }
            int ok = 0;
            int insufficient = 0;
            for (Future<HttpResponse<String>> f : futures) {
                HttpResponse<String> r = f.get();
                if (r.statusCode() == 200) {
                    ok++;
                } else {
                    assertThat(r.statusCode()).isEqualTo(429);
                    assertThat(JSON.readTree(r.body()).path("error").path("code").asText()).isEqualTo("insufficient_quota");
                    insufficient++;
                }
            }
            assertThat(ok).isPositive();
            assertThat(insufficient).isPositive();

            List<UsageEvent> events = bed.awaitEvents(user.userId(), calls, Duration.ofSeconds(30));
            assertThat(events).hasSize(calls);
            assertThat(events.stream().filter(e -> e.getOutcome() == Outcome.SUCCEEDED)).hasSize(ok);
            assertThat(events.stream().filter(e -> e.getOutcome() == Outcome.REJECTED)).hasSize(insufficient);
            long billed = events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum();
            assertThat(billed).isPositive().isLessThanOrEqualTo(credit + estimate);
            await("every admitted call settled").atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(billed));
            assertThat(events.stream().map(UsageEvent::getEventId).distinct()).hasSize(calls);
        }
    }
}
