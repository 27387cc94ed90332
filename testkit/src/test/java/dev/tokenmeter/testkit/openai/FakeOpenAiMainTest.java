package dev.tokenmeter.testkit.openai;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The stand-alone fake as the demo and docker-compose run it: a separate JVM. */
class FakeOpenAiMainTest {

    private static ProcessBuilder java(String... args) {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String[] command = new String[4 + args.length];
        command[0] = java;
        command[1] = "-cp";
        command[2] = System.getProperty("java.class.path");
        command[3] = FakeOpenAiMain.class.getName();
        System.arraycopy(args, 0, command, 4, args.length);
        return new ProcessBuilder(command);
    }

    @Test
    void printsItsBaseUrlAndServesUntilKilled() throws Exception {
        Process process = java("0").redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader stdout = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            String baseUrl = CompletableFuture.supplyAsync(() -> {
                try {
                    return stdout.readLine();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).get(30, TimeUnit.SECONDS);
            assertThat(baseUrl).matches("http://127\\.0\\.0\\.1:\\d+");

            try (HttpClient http = HttpClient.newHttpClient()) {
                HttpResponse<String> models = http.send(HttpRequest.newBuilder(URI.create(baseUrl + "/v1/models"))
                        .header("Authorization", "Bearer sk-main").GET().build(), HttpResponse.BodyHandlers.ofString());
                assertThat(models.statusCode()).isEqualTo(200);
                assertThat(models.body()).contains("\"object\":\"list\"");
            }
            assertThat(process.isAlive()).isTrue();
        } finally {
            process.destroy();
            assertThat(process.waitFor(10, TimeUnit.SECONDS)).as("fake stops on SIGTERM").isTrue();
        }
    }

    @Test
    void badPortFailsFastNamingTheKey() throws Exception {
        Process process = java("not-a-port").redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(process.exitValue()).isEqualTo(2);
        assertThat(stderr).contains("FAKE_OPENAI_PORT");
    }
}
