package dev.tokenmeter.events.topic;

import org.apache.kafka.common.serialization.Serde;

import java.util.Map;

/**
 * A topic's name paired with the serdes of its key and value and how it is created.
 *
 * @param partitions   partitions to create it with (scale consumers up to this many instances)
 * @param compacted    cleanup.policy=compact (latest value per key), otherwise delete by retention
 * @param retentionMs  retention for delete-policy topics; -1 keeps records forever
 */
public record TopicSpec<K, V>(String name, Serde<K> keySerde, Serde<V> valueSerde, int partitions,
                              boolean compacted, long retentionMs) {

    public TopicSpec {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("topic name must not be blank");
        }
        if (partitions < 1) {
            throw new IllegalArgumentException("topic " + name + ": partitions must be >= 1");
        }
    }

    /** Topic-level configs to create it with. */
    public Map<String, String> configs() {
        return compacted
                ? Map.of("cleanup.policy", "compact")
                : Map.of("cleanup.policy", "delete", "retention.ms", Long.toString(retentionMs));
    }
}
