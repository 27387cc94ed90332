package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.support.DockerRequirement;
import org.testcontainers.kafka.KafkaContainer;
import org.testcontainers.utility.DockerImageName;

import java.util.Map;

/** Kafka from Testcontainers' apache/kafka image (KRaft). Needs a Docker engine. */
public final class ContainerKafkaEngine implements KafkaEngine, AutoCloseable {

    public static final String IMAGE = "apache/kafka:4.1.0";

    private final KafkaContainer container;
    private final KafkaTopics topics;

    private ContainerKafkaEngine(KafkaContainer container) {
        this.container = container;
        this.topics = new KafkaTopics(container.getBootstrapServers());
    }

    public static ContainerKafkaEngine launch() {
        DockerRequirement.check("Kafka (" + IMAGE + ")");
        KafkaContainer container = new KafkaContainer(DockerImageName.parse(IMAGE))
                .withEnv("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
                .withEnv("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
        container.start();
        return new ContainerKafkaEngine(container);
    }

    @Override
    public String bootstrapServers() {
        return container.getBootstrapServers();
    }

    @Override
    public void createTopic(String name, int partitions) {
        topics.create(name, partitions, Map.of());
    }

    @Override
    public void createCompactedTopic(String name, int partitions) {
        topics.create(name, partitions, Map.of("cleanup.policy", "compact"));
    }

    /**
     * Not supported: a restarted container gets a new random host port, which breaks the "same port" contract.
     * Fault tests that stop the broker run on the embedded backend.
     */
    @Override
    public void stop() {
        throw new UnsupportedOperationException("stop()/start() of Kafka is not supported by the containers backend "
                + "(a restarted container gets a new port); run fault tests with tokenmeter.test.backend=embedded");
    }

    @Override
    public void start() {
        stop();
    }

    @Override
    public boolean isRunning() {
        return container.isRunning();
    }

    @Override
    public void close() {
        topics.close();
        container.stop();
    }
}
