package dev.tokenmeter.edge;

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

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Issue 4: the edge keeps serving calls while the broker is down; every call's event arrives after it returns. */
@ExtendWith(EnginesExtension.class)
class EdgeKafkaOutageIT {

    @Test
    void brokerOutage_callsKeepSucceeding_andNoEventIsLost(Engines engines) throws Exception {
        try (FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("SPOOL_SEND_TIMEOUT", "500ms"))) {
            EdgeTestBed.User user = bed.newUser(10_000_000_000L);
            List<String> eventIds = new ArrayList<>();
            HttpResponse<String> before = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "before"));
            assertThat(before.statusCode()).isEqualTo(200);
            eventIds.add(before.headers().firstValue("x-tokenmeter-event-id").orElseThrow());
            await("event before the outage").atMost(Duration.ofSeconds(20)).until(() -> bed.events(user.userId()).size() == 1);
            engines.kafka().stop();
            try {
                for (int i = 0; i < 30; i++) {
                    HttpResponse<String> r = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "during " + i));
                    assertThat(r.statusCode()).as("call %d during the outage: %s", i, r.body()).isEqualTo(200);
                    eventIds.add(r.headers().firstValue("x-tokenmeter-event-id").orElseThrow());
                }
                await("the edge spools").atMost(Duration.ofSeconds(10)).until(bed.sink::spooling);
                HttpResponse<String> ready = bed.client.send(java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create(bed.baseUrl() + "/health/ready")).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(ready.statusCode()).as("ready on the spool: %s", ready.body()).isEqualTo(200);
            } finally {
                engines.kafka().start();
            }
            await("all 31 events after the broker is back").atMost(Duration.ofSeconds(90))
                    .until(() -> bed.events(user.userId()).stream().map(e -> e.getEventId()).distinct().count() == 31);
            List<String> firstSeen = bed.events(user.userId()).stream().map(e -> e.getEventId()).distinct().toList();
            assertThat(firstSeen).as("in call order").containsExactlyElementsOf(eventIds);
        }
    }

    @Test
    void fullSpool_callsAre503_beforeAnythingIsSpent_andTheEdgeIsNotReady(Engines engines) throws Exception {
        // Kafka unreachable from the start (nothing listens on port 1) and a tiny spool.
        try (FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1",
                     "SPOOL_MAX_BYTES", "4096", "SPOOL_SEND_TIMEOUT", "300ms"))) {
            EdgeTestBed.User user = bed.newUser(10_000_000_000L);
            HttpResponse<String> refused = null;
            int served = 0;
            for (int i = 0; i < 200 && refused == null; i++) {
                HttpResponse<String> r = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "call " + i));
                if (r.statusCode() == 503) {
                    refused = r;
                } else {
                    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
                    served++;
                }
            }
            assertThat(refused).as("a full spool refuses calls").isNotNull();
            assertThat(served).isPositive();
            assertThat(ApiCallsJson.code(refused.body())).isEqualTo("service_unavailable");
            assertThat(refused.headers().firstValue("retry-after")).as("not every second: the spool stays full until Kafka is back")
                    .hasValue("5");
            int upstreamCalls = openAi.requestCount();
            HttpResponse<String> again = bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", "more"));
            assertThat(again.statusCode()).isEqualTo(503);
            assertThat(openAi.requestCount()).as("nothing is spent upstream while events cannot be recorded").isEqualTo(upstreamCalls);
            await("no reservation left behind").atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(bed.quota.reservedNanoUsd(user.userId())).isZero());
            HttpResponse<String> ready = bed.client.send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create(bed.baseUrl() + "/health/ready")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(ready.statusCode()).isEqualTo(503);
            assertThat(ready.body()).contains("events");
            // The 503s came before spending: every call that was served has its event kept (Kafka never saw any).
            assertThat(bed.sink.pendingEvents()).as("events of served calls, all kept").isEqualTo(served);
        }
    }

    private static final class ApiCallsJson {
        static String code(String body) throws Exception {
            return new com.fasterxml.jackson.databind.ObjectMapper().readTree(body).at("/error/code").asText();
        }
    }
}
