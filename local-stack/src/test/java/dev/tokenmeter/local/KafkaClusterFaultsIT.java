package dev.tokenmeter.local;

import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.kafka.EmbeddedKafkaCluster;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.apache.kafka.clients.admin.Admin;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 18's cluster drill, Kafka part (ADR 0084; Maven profile {@code faults}, about 5 minutes): the whole pipeline
 * from its shipped jars, configured by environment only, on a three-broker cluster (every topic RF 3, min ISR 2)
 * under steady load through the edge; one broker SIGKILLed and restarted, then the broker leading most partitions of
 * the usage events topic. Then the usual checks ({@link FaultDrill}, {@link Reconciliation}): every event id the edge
 * returned is in the ledger exactly once, and ledger = monthly = sum of hourly per user, model and key source, to the
 * nano-dollar. Each kill's time back to zero lag goes to {@code target/fault-figures.md} and BENCHMARKS.md.
 */
class KafkaClusterFaultsIT {

    private static final int RATE_PER_SECOND = 15;

    @Test
    void theBillStaysExactWhenBrokersOfAClusterAreKilled(@TempDir Path workDir) throws Exception {
        String prefix = Names.unique("kcl") + ".";
        FaultFigures figures = new FaultFigures(Path.of("target", "fault-figures-kafka-cluster.md"));
        figures.begin(Instant.now(), RATE_PER_SECOND + " requests/s of demo traffic through the edge, the services run"
                + " from their shipped jars, Kafka: 3 brokers + 1 controller, RF 3, min.insync.replicas 2");
        try (Engines engines = Engines.create(Backend.EMBEDDED, EmbeddedKafkaCluster::launch);
             FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix)) {
            EmbeddedKafkaCluster cluster = (EmbeddedKafkaCluster) engines.kafka();
            String events = stack.topics().usageEvents().name();
            try (Admin admin = Admin.create(cluster.clientProperties())) {
                assertThat(admin.describeTopics(List.of(events)).allTopicNames().get(30, TimeUnit.SECONDS).get(events)
                        .partitions()).as("the deployment's init step made the topics with RF 3")
                        .allSatisfy(p -> assertThat(p.replicas()).hasSize(3));
            }
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                    stack.kafka(), stack.topics(), prefix);
            FaultDrill drill = new FaultDrill(stack, engines, System.out);
            FaultDrill.Result result = drill.run(FaultDrill.Scenario.KAFKA_BROKER_KILLS, RATE_PER_SECOND, demo,
                    Path.of("target", "e2e-report.txt"));
            figures.append(result);
            drill.steps().forEach(s -> System.out.println("KafkaClusterFaultsIT step: " + s));
            System.out.printf("KafkaClusterFaultsIT: %d calls in %ds, %.1f events/s into the ledger%n", result.traffic().sent(),
                    FaultDrill.Scenario.KAFKA_BROKER_KILLS.load.toSeconds(),
                    result.traffic().eventIds().size() / (double) FaultDrill.Scenario.KAFKA_BROKER_KILLS.load.toSeconds());

            assertThat(drill.steps()).as("two kills, each measured").hasSize(2);
            assertThat(result.drained()).as("pipeline drained after the broker kills\n"
                    + String.join("\n", result.verdict().lines())).isTrue();
            assertThat(result.verdict().ok()).as(String.join("\n", result.verdict().lines())).isTrue();
            assertThat(result.traffic().eventIds()).as("the edge kept answering calls").hasSizeGreaterThan(500);
            assertThat(cluster.brokers()).as("all three brokers back").allMatch(b -> b.isRunning());
        }
    }
}
