package dev.tokenmeter.testkit;

/** A Kafka cluster for tests: a single broker unless the external backend points at something bigger. */
public interface KafkaEngine {

    String bootstrapServers();

    /** Creates the topic (idempotent if it exists with same partitions) and waits until it is usable. */
    void createTopic(String name, int partitions);

    /** Like {@link #createTopic} with {@code cleanup.policy=compact}. */
    void createCompactedTopic(String name, int partitions);

    /** Stops the broker (fault tests); its data survives; start() brings it back on the SAME port. */
    void stop();

    void start();

    boolean isRunning();
}
