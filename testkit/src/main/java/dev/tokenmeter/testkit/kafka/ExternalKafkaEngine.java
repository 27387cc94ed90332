package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.support.UnmanagedServer;

import java.util.Map;

/** A Kafka cluster that is already running; this engine neither starts nor stops it. */
public final class ExternalKafkaEngine extends UnmanagedServer implements KafkaEngine, AutoCloseable {

    private final String bootstrapServers;
    private final KafkaTopics topics;

    public ExternalKafkaEngine(String bootstrapServers) {
        super("external", "Kafka", "it belongs to whoever runs it: tokenmeter.kafka.bootstrap");
        this.bootstrapServers = bootstrapServers;
        this.topics = new KafkaTopics(bootstrapServers);
    }

    @Override
    public String bootstrapServers() {
        return bootstrapServers;
    }

    @Override
    public void createTopic(String name, int partitions, Map<String, String> configs) {
        topics.create(name, partitions, configs);
    }

    /** Always true: the external backend does not manage the server's life. */
    @Override
    public boolean isRunning() {
        return true;
    }

    @Override
    public void close() {
        topics.close();
    }
}
