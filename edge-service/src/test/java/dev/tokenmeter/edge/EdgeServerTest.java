package dev.tokenmeter.edge;

import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;

class EdgeServerTest {

    @Test
    void readyOnlyWhenEveryCheckPassesAndExtraRoutesAreServed() throws Exception {
        AtomicBoolean redis = new AtomicBoolean(true);
        try (EdgeServer server = EdgeServer.builder().port(0)
                .readinessCheck("quota", redis::get)
                .readinessCheck("events", () -> true)
                .readinessCheck("postgres", () -> { throw new IllegalStateException("down"); })
                .routes(r -> r.get("/v1/metering/ping", ctx -> ctx.result("pong")))
                .build().start();
             HttpClient client = HttpClient.newHttpClient()) {
            HttpResponse<String> ready = client.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + "/health/ready")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(ready.statusCode()).isEqualTo(503);
            assertThat(ready.body()).contains("\"postgres\"").doesNotContain("\"quota\"");
            redis.set(false);
            ready = client.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + "/health/ready")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(ready.body()).contains("\"quota\"").contains("\"postgres\"");
            HttpResponse<String> live = client.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + "/health/live")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(live.statusCode()).isEqualTo(200);
            HttpResponse<String> extra = client.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + "/v1/metering/ping")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(extra.body()).isEqualTo("pong");
        }
    }
}
