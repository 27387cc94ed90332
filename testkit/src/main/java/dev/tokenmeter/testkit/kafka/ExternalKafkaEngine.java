package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.support.UnmanagedServer;

import java.util.Map;

/** A Kafka cluster that is already running; this engine neither starts nor stops it. */
public final class ExternalKafkaEngine extends UnmanagedServer implements KafkaEngine, AutoCloseable {

    private final KafkaClientSettings settings;
    private final KafkaTopics topics;

    /** A PLAINTEXT cluster (the external backend's settings name no login). */
    public ExternalKafkaEngine(String bootstrapServers) {
        this(KafkaClientSettings.plaintext(bootstrapServers));
    }

    /** A cluster reached with these settings (a secured one: as a principal allowed to create topics). */
    public ExternalKafkaEngine(KafkaClientSettings settings) {
        super("external", "Kafka", "it belongs to whoever runs it: tokenmeter.kafka.bootstrap");
        this.settings = settings;
        this.topics = new KafkaTopics(clientProperties());
    }

    @Override
    public String bootstrapServers() {
        return settings.bootstrapServers();
    }

    @Override
    public KafkaClientSettings clientSettings() {
        return settings;
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
