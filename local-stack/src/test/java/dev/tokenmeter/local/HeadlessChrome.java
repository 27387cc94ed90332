package dev.tokenmeter.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;

import static org.awaitility.Awaitility.await;

/**
 * Debian's headless Chromium driven through chromedriver with the W3C WebDriver HTTP protocol over java.net.http
 * (no Selenium): start a session, open a URL, run a script, take a screenshot. Needs the packages {@code chromium}
 * and {@code chromium-driver} (.ci/run installs them); without them the test fails, it does not skip.
 */
final class HeadlessChrome implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path REAL_BINARY = Path.of("/usr/lib/chromium/chromium");

    private final Process driver;
    private final URI base;
    private final HttpClient http = HttpClient.newHttpClient();
    private final String session;

    private HeadlessChrome(Process driver, URI base, String session) {
        this.driver = driver;
        this.base = base;
        this.session = session;
    }

    static HeadlessChrome start(Path logDir) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Files.createDirectories(logDir);
        Process driver = new ProcessBuilder("chromedriver", "--port=" + port)
                .redirectErrorStream(true).redirectOutput(logDir.resolve("chromedriver.log").toFile()).start();
        URI base = URI.create("http://127.0.0.1:" + port);
        HttpClient http = HttpClient.newHttpClient();
        try {
            await("chromedriver answers /status on port " + port).atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200))
                    .ignoreExceptions().until(() -> JSON.readTree(http.send(HttpRequest.newBuilder(base.resolve("/status")).build(),
                            HttpResponse.BodyHandlers.ofString()).body()).at("/value/ready").asBoolean());
            ObjectNode caps = JSON.createObjectNode();
            ObjectNode always = caps.putObject("capabilities").putObject("alwaysMatch");
            always.put("browserName", "chrome");
            ObjectNode chrome = always.putObject("goog:chromeOptions");
            if (Files.isExecutable(REAL_BINARY)) {
                chrome.put("binary", REAL_BINARY.toString()); // Debian's /usr/bin/chromium is a shell wrapper
            }
            ArrayNode args = chrome.putArray("args");
            for (String a : new String[] {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,2000", "--user-data-dir=" + Files.createTempDirectory("chromium-profile")}) {
                args.add(a);
            }
            JsonNode created = call(http, "POST", base.resolve("/session"), caps);
            return new HeadlessChrome(driver, base, created.at("/value/sessionId").asText());
        } catch (Exception | AssertionError e) {
            driver.destroyForcibly();
            throw e;
        }
    }

    void open(String url) throws Exception {
        ObjectNode body = JSON.createObjectNode().put("url", url);
        call(http, "POST", at("/url"), body);
    }

    /** Runs {@code script} (a function body; {@code return} its answer) in the page and answers its value. */
    JsonNode execute(String script) throws Exception {
        ObjectNode body = JSON.createObjectNode().put("script", script);
        body.putArray("args");
        return call(http, "POST", at("/execute/sync"), body).get("value");
    }

    void screenshot(Path png) throws Exception {
        String b64 = call(http, "GET", at("/screenshot"), null).get("value").asText();
        Files.createDirectories(png.getParent());
        Files.write(png, Base64.getDecoder().decode(b64));
    }

    private URI at(String path) {
        return base.resolve("/session/" + session + path);
    }

    private static JsonNode call(HttpClient http, String method, URI uri, JsonNode body) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(60)).header("Content-Type", "application/json");
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body.toString()));
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IllegalStateException("WebDriver " + method + " " + uri.getPath() + ": " + r.statusCode() + " " + r.body());
        }
        return JSON.readTree(r.body());
    }

    @Override
    public void close() {
        try {
            call(http, "DELETE", base.resolve("/session/" + session), null);
        } catch (Exception e) {
            // the driver is stopped below either way
        }
        driver.destroy();
        try {
            if (!driver.waitFor(5, java.util.concurrent.TimeUnit.SECONDS)) {
                driver.destroyForcibly();
            }
        } catch (InterruptedException e) {
            driver.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
