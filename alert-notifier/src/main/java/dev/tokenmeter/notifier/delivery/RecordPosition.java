package dev.tokenmeter.notifier.delivery;

/** Where an alert was read: its topic, partition and offset (kept with a dead letter). */
public record RecordPosition(String topic, int partition, long offset) {
}
