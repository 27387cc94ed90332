package dev.tokenmeter.sink;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;

import java.util.List;
import java.util.Map;

/**
 * Writes one polled batch, and the consumer positions after it, in one database transaction. Either
 * everything is committed or nothing is (an exception), in which case the batch is retried as a whole.
 */
interface BatchWriter {

    void write(List<ConsumerRecord<byte[], byte[]>> records, Map<TopicPartition, Long> nextOffsets);
}
