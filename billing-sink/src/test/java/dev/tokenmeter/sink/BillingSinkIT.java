package dev.tokenmeter.sink;

import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.PostgresEngine;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** The sink end to end on a real broker and Postgres, under the faults it must survive. */
@ExtendWith(EnginesExtension.class)
class BillingSinkIT {

    private final KafkaEngine kafka;
    private final PostgresEngine postgres;

    BillingSinkIT(KafkaEngine kafka, PostgresEngine postgres) {
        this.kafka = kafka;
        this.postgres = postgres;
    }

    @Test
    void hardKillsBetweenDatabaseAndKafkaCommitsLoseNothingAndDoubleNothing(@TempDir Path dir) throws Exception {
        Setup s = setup("kill");
        List<UsageEvent> events = events(12_000, "k");
        try (ChildJvm sink = new ChildJvm(BillingSinkApp.class.getName(), s.env(), dir.resolve("sink.log"), "-Xmx256m")) {
            sink.start();
            CompletableFuture<Void> load = CompletableFuture.runAsync(() -> publish(s.topics, events, 2));
            for (int kill = 1; kill <= 3; kill++) {
                long before = ledgerRows(s.url);
                await("sink makes progress before kill " + kill).atMost(Duration.ofMinutes(1)).pollInterval(Duration.ofMillis(50))
                        .until(() -> ledgerRows(s.url) > before + 500 || ledgerRows(s.url) == events.size());
                sink.kill(); // SIGKILL: whatever the DB committed, Kafka's offset commit may never have happened
                sink.start();
            }
            load.get();
            await("every event billed exactly once after three SIGKILLs").atMost(Duration.ofMinutes(2))
                    .pollInterval(Duration.ofMillis(250))
                    .untilAsserted(() -> assertThat(ledgerRows(s.url)).isEqualTo(events.size()));
            assertThat(scalar(s.url, "SELECT sum(cost_nano_usd) FROM usage_ledger")).isEqualTo(sum(events));
            assertThat(scalar(s.url, "SELECT count(*) FROM usage_ledger_event_id")).isEqualTo(events.size());
        }
    }

    @Test
    void postgresDownUnderLoadPausesAndLosesNothing() throws Exception {
        Setup s = setup("pgdown");
        List<UsageEvent> events = events(4_000, "p");
        try (BillingSinkApp app = new BillingSinkApp(s.config(), s.topics, SinkMetrics.noop()).start()) {
            CompletableFuture<Void> load = CompletableFuture.runAsync(() -> publish(s.topics, events, 1));
            await("sink is writing").atMost(Duration.ofMinutes(1)).until(() -> ledgerRows(s.url) > 500);
            postgres.stop();
            await("broker keeps taking events while the database is down").atMost(Duration.ofSeconds(30))
                    .pollDelay(Duration.ofSeconds(5)).until(() -> true);
            postgres.start();
            load.get();
            await("every event billed once after the outage").atMost(Duration.ofMinutes(2)).pollInterval(Duration.ofMillis(250))
                    .untilAsserted(() -> assertThat(ledgerRows(s.url)).isEqualTo(events.size()));
            assertThat(scalar(s.url, "SELECT sum(cost_nano_usd) FROM usage_ledger")).isEqualTo(sum(events));
        }
    }

    private record Setup(String url, Topics topics, String prefix, String bootstrap, String user, String password) {
        Map<String, String> env() {
            return Map.of("KAFKA_BOOTSTRAP_SERVERS", bootstrap, "TOPIC_PREFIX", prefix, "DATABASE_URL", url,
                    "DATABASE_USER", user, "DATABASE_PASSWORD", password, "GROUP_ID", prefix + "sink",
                    "BATCH_MAX_RECORDS", "500", "RETRY_BACKOFF_MAX", "1s", "METRICS_PORT", "-1");
        }

        BillingSinkConfig config() {
            return BillingSinkConfig.fromEnv(env());
        }
    }

    private Setup setup(String name) {
        String prefix = Names.unique(name) + ".";
        Topics topics = Topics.withPrefix(prefix, 3);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            topics.createAll(admin, (short) 1);
        }
        return new Setup(postgres.createMigratedDatabase(name), topics, prefix, kafka.bootstrapServers(), postgres.user(),
                postgres.password());
    }

    private void publish(Topics topics, List<UsageEvent> events, int copies) {
        try (UsageEventPublisher publisher = UsageEventPublisher.builder()
                .bootstrapServers(kafka.bootstrapServers()).topic(topics.usageEvents()).build()) {
            List<CompletableFuture<?>> acks = new ArrayList<>();
            for (int i = 0; i < events.size(); i++) {
                for (int c = 0; c < (i % 10 == 0 ? copies : 1); c++) { // every tenth event is also resent
                    acks.add(publisher.publish(events.get(i)));
                }
            }
            CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new)).join();
        }
    }

    private static List<UsageEvent> events(int n, String userPrefix) {
        List<UsageEvent> events = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            events.add(LedgerWriterIT.event(userPrefix + (i % 40), "2026-11-0" + (1 + i % 9) + "T10:00:00Z", 1 + (i % 977)));
        }
        return events;
    }

    private static long sum(List<UsageEvent> events) {
        return events.stream().mapToLong(UsageEvent::getCostNanoUsd).sum();
    }

    private long ledgerRows(String url) throws Exception {
        return scalar(url, "SELECT count(*) FROM usage_ledger");
    }

    private long scalar(String url, String sql) throws Exception {
        try (Connection c = DriverManager.getConnection(url, postgres.user(), postgres.password());
             ResultSet rs = c.createStatement().executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        } catch (java.sql.SQLException e) {
            return -1; // database stopped by the test
        }
    }
}
