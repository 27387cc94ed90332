package dev.tokenmeter.testkit;

import java.util.Map;

/** A Kafka cluster for tests: a single broker unless the external backend points at something bigger. */
public interface KafkaEngine {

    String bootstrapServers();

    /**
     * Creates the topic with these topic-level configs (idempotent if it exists with the same partitions) and
     * waits until it is usable. Without a {@code retention.ms} of their own, test topics keep their records
     * until deleted: tests write back-dated events, which a broker's default 7-day retention could delete.
     */
    void createTopic(String name, int partitions, Map<String, String> configs);

    /** {@link #createTopic(String, int, Map)} without topic-level configs. */
    default void createTopic(String name, int partitions) {
        createTopic(name, partitions, Map.of());
    }

    /** Like {@link #createTopic} with {@code cleanup.policy=compact}. */
    default void createCompactedTopic(String name, int partitions) {
        createTopic(name, partitions, Map.of("cleanup.policy", "compact"));
    }

    /** Stops the broker (fault tests); its data survives; start() brings it back on the SAME port. */
    void stop();

    void start();

    boolean isRunning();
}
