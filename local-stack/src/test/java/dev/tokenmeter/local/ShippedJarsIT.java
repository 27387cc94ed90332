package dev.tokenmeter.local;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 13, "artifacts are what the tests run": each shipped jar, started as the Dockerfile starts it
 * ({@code java -jar <module>-*-all.jar}, environment only) against the testkit's engines, reaches READY, does its
 * job once and exits cleanly on SIGTERM within its grace period. A call through the edge is the one piece of work:
 * the edge proxies it to the fake OpenAI and publishes its event, the aggregator emits a monthly total for it, the
 * sink writes its ledger row.
 */
@ExtendWith(EnginesExtension.class)
class ShippedJarsIT {

    @Test
    void eachShippedJarStartsDoesItsJobOnceAndStopsOnSigterm(Engines engines, @TempDir Path workDir) throws Exception {
        String prefix = Names.unique("jars") + ".";
        try (FakeOpenAi upstream = FakeOpenAi.start();
             // READY: the edge's /health/ready answers 200, the aggregator and the sink print their READY lines.
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix)) {

            for (ChildJvm service : List.of(stack.edge, stack.aggregator, stack.sink)) {
                assertThat(service.launch()).as(service.name() + " runs as shipped").hasSize(2).first().isEqualTo("-jar");
                assertThat(service.launch().get(1)).matches(".*/" + service.name() + "/target/" + service.name() + "-[^/]+-all\\.jar");
            }

            DemoTraffic.Caller caller = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                    stack.kafka(), stack.topics(), prefix).callers().get(0);
            int upstreamCallsBefore = upstream.requestCount();
            HttpResponse<String> answer = HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(stack.edgeUrl().resolve("/v1/chat/completions"))
                            .header("Authorization", "Bearer " + caller.apiKey())
                            .header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofString(
                                    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"))
                            .build(), HttpResponse.BodyHandlers.ofString());
            assertThat(answer.statusCode()).as("edge proxies the call: " + answer.body()).isEqualTo(200);
            assertThat(upstream.requestCount()).as("the fake OpenAI saw the call").isGreaterThan(upstreamCallsBefore);
            String eventId = answer.headers().firstValue("x-tokenmeter-event-id").orElseThrow();

            try (KafkaConsumer<byte[], byte[]> totals = new KafkaConsumer<>(stack.kafka(Map.of(ConsumerConfig.GROUP_ID_CONFIG, prefix + "shipped-jars-it",
                    ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                    ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")),
                    new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                totals.subscribe(List.of(stack.topics().monthlyTotals().name()));
                AtomicInteger seen = new AtomicInteger();
                await("the aggregator emits a monthly total for the call").atMost(Duration.ofSeconds(90))
                        .until(() -> seen.addAndGet(totals.poll(Duration.ofMillis(500)).count()) > 0);
            }

            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
                 PreparedStatement ledgerRows = db.prepareStatement("SELECT count(*) FROM usage_ledger WHERE event_id = ?")) {
                ledgerRows.setObject(1, eventId, java.sql.Types.OTHER);
                await("the sink writes the call's ledger row (event " + eventId + ")").atMost(Duration.ofSeconds(90))
                        .until(() -> count(ledgerRows) == 1);
            }

            // The analysts' login the stack prints: TailTopic with exactly what `set -a; . analyst-kafka.env` exports.
            assertThat(Files.getPosixFilePermissions(stack.analystEnv)).as("the analyst's env file holds a password")
                    .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
            Map<String, String> analyst = sourced(stack.analystEnv);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int status = TailTopic.tail(KafkaClientSettings.fromEnv(analyst), analyst.get("KAFKA_GROUP_PREFIX"),
                    stack.topics().usageEvents().name(), Long.MAX_VALUE, Duration.ofSeconds(3),
                    new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
            assertThat(status).as("TailTopic as the analyst: " + err.toString(StandardCharsets.UTF_8)).isZero();
            assertThat(out.toString(StandardCharsets.UTF_8)).as("TailTopic prints the call's event, decoded").contains(eventId);
            if (analyst.containsKey("KAFKA_PASSWORD")) {
                Map<String, String> wrong = new HashMap<>(analyst);
                wrong.put("KAFKA_PASSWORD", "not-the-password");
                err.reset();
                assertThat(TailTopic.tail(KafkaClientSettings.fromEnv(wrong), "analyst", stack.topics().usageEvents().name(),
                        1, Duration.ofSeconds(1), new PrintStream(out), new PrintStream(err, true, StandardCharsets.UTF_8)))
                        .as("a wrong password is an exit status").isEqualTo(1);
                assertThat(err.toString(StandardCharsets.UTF_8)).as("and one line saying why")
                        .contains("cannot read " + stack.topics().usageEvents().name()).doesNotContain("not-the-password");
            }

            assertStopsCleanly(stack.sink, Stack.GRACE);
            assertStopsCleanly(stack.aggregator, Stack.GRACE);
            assertStopsCleanly(stack.edge, Stack.EDGE_GRACE);
        }
    }

    /** SIGTERM: shutdown hooks run and the JVM exits with 143 (128 + 15), or 0 if main returned first. */
    private static void assertStopsCleanly(ChildJvm service, Duration grace) {
        ChildJvm.Stopped stopped = service.terminate(grace);
        assertThat(stopped.killed()).as(service.name() + " needed SIGKILL after " + grace + ":\n" + service.logTail(30)).isFalse();
        assertThat(stopped.exitCode()).as(service.name() + " exit code:\n" + service.logTail(30)).isIn(0, 143);
        assertThat(stopped.took()).as(service.name() + " stop time").isLessThan(grace);
        assertThat(service.printedSinceStart("shutting down")).as(service.name() + " ran its shutdown hook").isTrue();
    }

    /** The variables a shell exports after {@code set -a; . file}. */
    private static Map<String, String> sourced(Path file) throws Exception {
        Process bash = new ProcessBuilder("bash", "-c", "set -a; . \"$1\"; env -0", "_", file.toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String all = new String(bash.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(bash.waitFor()).as("bash sources " + file).isZero();
        Map<String, String> env = new HashMap<>();
        for (String kv : all.split("\0")) {
            int eq = kv.indexOf('=');
            if (eq > 0 && (kv.startsWith("KAFKA_"))) {
                env.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
        }
        return env;
    }

    private static long count(PreparedStatement query) throws Exception {
        try (ResultSet rs = query.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
