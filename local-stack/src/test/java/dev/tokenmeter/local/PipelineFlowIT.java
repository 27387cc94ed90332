package dev.tokenmeter.local;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 2's flowing skeleton, end to end on real engines: edge → Kafka → aggregator → sink → Postgres.
 * 1,000 events for several users, with duplicates of some event ids (one resent with another
 * timestamp), plus real calls through the edge; Postgres must hold exactly one ledger row per distinct
 * event id, and the monthly and hourly totals must equal the sums of the distinct events to the nano-dollar.
 */
@ExtendWith(EnginesExtension.class)
class PipelineFlowIT {

    private static final List<String> MODELS = List.of("gpt-4o-mini", "gpt-4.1", "o4-mini");

    @Test
    void thousandEventsWithDuplicatesAreBilledExactlyOnce(Engines engines, @TempDir Path workDir) throws Exception {
        String prefix = Names.unique("flow") + ".";
        try (FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix)) {

            // Real calls through the edge: each must become exactly one event.
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                    stack.kafka(), stack.topics(), prefix);
            DemoTraffic.Caller alice = demo.callers().get(0);
            HttpClient http = HttpClient.newHttpClient();
            List<String> edgeEventIds = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                HttpResponse<String> response = http.send(HttpRequest.newBuilder(stack.edgeUrl().resolve("/v1/chat/completions"))
                        .header("Authorization", "Bearer " + alice.apiKey())
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(
                                "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello " + i + "\"}]}"))
                        .build(), HttpResponse.BodyHandlers.ofString());
                assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
                response.headers().firstValue("x-tokenmeter-event-id").ifPresent(edgeEventIds::add);
            }

            // 1,000 published events: 900 distinct + 100 duplicates of earlier ids.
            Random random = new Random(7);
            Instant now = Instant.now();
            List<UsageEvent> distinct = new ArrayList<>();
            List<UsageEvent> published = new ArrayList<>();
            for (int i = 0; i < 900; i++) {
                String user = prefix + "u" + (i % 6);
                Instant occurred = now.minus(random.nextInt(6 * 60), ChronoUnit.MINUTES);
                long prompt = 10 + random.nextInt(2000);
                long completion = random.nextInt(500);
                KeySource source = i % 5 == 0 ? KeySource.PERSONAL_KEY : KeySource.SERVICE_CREDIT;
                UsageEvent e = UsageEvent.newBuilder()
                        .setEventId(UUID.randomUUID().toString())
                        .setOccurredAt(occurred.truncatedTo(ChronoUnit.MILLIS))
                        .setReceivedAt(occurred.plusMillis(300).truncatedTo(ChronoUnit.MILLIS))
                        .setTenantId("t1").setUserId(user).setKeySource(source)
                        .setModel(MODELS.get(i % MODELS.size())).setEndpoint("/v1/chat/completions")
                        .setOutcome(Outcome.SUCCEEDED).setHttpStatus(200)
                        .setPromptTokens(prompt).setCompletionTokens(completion)
                        .setCostNanoUsd(prompt * 150 + completion * 600 + random.nextInt(7))
                        .setUsageSource(UsageSource.REPORTED)
                        .build();
                distinct.add(e);
                published.add(e);
            }
            for (int i = 0; i < 100; i++) {
                UsageEvent original = distinct.get(random.nextInt(distinct.size()));
                // A retry re-sends the same call; one in ten also carries another receivedAt.
                UsageEvent dup = UsageEvent.newBuilder(original)
                        .setReceivedAt(i % 10 == 0 ? original.getReceivedAt().plusSeconds(5) : original.getReceivedAt())
                        .build();
                published.add(random.nextInt(published.size()), dup);
            }
            try (UsageEventPublisher publisher = UsageEventPublisher.builder()
                    .connection(stack.kafka()).topic(stack.topics().usageEvents()).build()) {
                List<CompletableFuture<?>> acks = new ArrayList<>();
                published.forEach(e -> acks.add(publisher.publish(e)));
                CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new)).get();
            }
            assertThat(published).hasSize(1000);

            long expectedRows = distinct.size() + 5;
            try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())) {
                await("ledger holds one row per distinct event (" + expectedRows + ")")
                        .atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofMillis(500))
                        .until(() -> scalar(db, "SELECT count(*) FROM usage_ledger") == expectedRows);

                for (String id : edgeEventIds) {
                    assertThat(scalar(db, "SELECT count(*) FROM usage_ledger WHERE event_id = '" + id + "'"))
                            .as("edge event " + id).isEqualTo(1);
                }

                Map<String, long[]> expected = new HashMap<>();
                for (UsageEvent e : distinct) {
                    LocalDate month = e.getOccurredAt().atZone(ZoneOffset.UTC).toLocalDate().withDayOfMonth(1);
                    long[] sums = expected.computeIfAbsent(e.getUserId() + "|" + e.getModel() + "|" + e.getKeySource() + "|" + month,
                            k -> new long[3]);
                    sums[0]++;
                    sums[1] += e.getCostNanoUsd();
                    sums[2] += e.getPromptTokens() + e.getCompletionTokens();
                }
                String monthlySql = "SELECT user_id || '|' || model || '|' || key_source || '|' || billing_month, "
                        + "event_count, cost_nano_usd, prompt_tokens + completion_tokens FROM usage_total_monthly WHERE user_id LIKE '"
                        + prefix + "u%'";
                await("monthly totals equal the sums of the distinct events to the nano-dollar")
                        .atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(500))
                        .untilAsserted(() -> assertThat(rows(db, monthlySql)).isEqualTo(flatten(expected)));

                String hourlySql = "SELECT user_id || '|' || model || '|' || key_source || '|' || "
                        + "date_trunc('month', hour_start AT TIME ZONE 'UTC')::date, sum(event_count), sum(cost_nano_usd), "
                        + "sum(prompt_tokens + completion_tokens) FROM usage_total_hourly WHERE user_id LIKE '" + prefix
                        + "u%' GROUP BY 1";
                await("hourly totals add up to the same sums")
                        .atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(500))
                        .untilAsserted(() -> assertThat(rows(db, hourlySql)).isEqualTo(flatten(expected)));
            }
        }
    }

    private static Map<String, List<Long>> flatten(Map<String, long[]> sums) {
        Map<String, List<Long>> out = new HashMap<>();
        sums.forEach((k, v) -> out.put(k, List.of(v[0], v[1], v[2])));
        return out;
    }

    private static Map<String, List<Long>> rows(Connection db, String sql) throws Exception {
        Map<String, List<Long>> out = new HashMap<>();
        try (ResultSet rs = db.createStatement().executeQuery(sql)) {
            while (rs.next()) {
                out.put(rs.getString(1), List.of(rs.getLong(2), rs.getLong(3), rs.getLong(4)));
            }
        }
        return out;
    }

    private static long scalar(Connection db, String sql) throws Exception {
        try (ResultSet rs = db.createStatement().executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

}
