package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.testkit.EngineVersions;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.support.DockerRequirement;
import dev.tokenmeter.testkit.support.UnmanagedServer;
import org.testcontainers.kafka.KafkaContainer;
import org.testcontainers.utility.DockerImageName;

import java.util.Map;

/** Kafka from the apache/kafka image of {@link EngineVersions} (KRaft). Needs a Docker engine. */
public final class ContainerKafkaEngine extends UnmanagedServer implements KafkaEngine, AutoCloseable {

    public static final String IMAGE = EngineVersions.KAFKA_IMAGE;

    private final KafkaContainer container;
    private final KafkaTopics topics;

    private ContainerKafkaEngine(KafkaContainer container) {
        super("containers", "Kafka", "a restarted container gets a new host port");
        this.container = container;
        this.topics = new KafkaTopics(clientProperties());
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
    public void createTopic(String name, int partitions, Map<String, String> configs) {
        topics.create(name, partitions, configs);
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
