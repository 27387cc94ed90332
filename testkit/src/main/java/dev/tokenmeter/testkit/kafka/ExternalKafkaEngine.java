package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.testkit.KafkaEngine;

import java.util.Map;

/** A Kafka cluster that is already running; this engine neither starts nor stops it. */
public final class ExternalKafkaEngine implements KafkaEngine, AutoCloseable {

    private final String bootstrapServers;
    private final KafkaTopics topics;

    public ExternalKafkaEngine(String bootstrapServers) {
        this.bootstrapServers = bootstrapServers;
        this.topics = new KafkaTopics(bootstrapServers);
    }

    @Override
    public String bootstrapServers() {
        return bootstrapServers;
    }

    @Override
    public void createTopic(String name, int partitions) {
        topics.create(name, partitions, Map.of());
    }

    @Override
    public void createCompactedTopic(String name, int partitions) {
        topics.create(name, partitions, Map.of("cleanup.policy", "compact"));
    }

    @Override
    public void stop() {
        throw unsupported();
    }

    @Override
    public void start() {
        throw unsupported();
    }

    /** Always true: the external backend does not manage the server's life. */
    @Override
    public boolean isRunning() {
        return true;
    }

    private static UnsupportedOperationException unsupported() {
        return new UnsupportedOperationException("the external backend does not stop or start Kafka ("
                + "tokenmeter.kafka.bootstrap); run fault tests with tokenmeter.test.backend=embedded");
    }

    @Override
    public void close() {
        topics.close();
    }
}
