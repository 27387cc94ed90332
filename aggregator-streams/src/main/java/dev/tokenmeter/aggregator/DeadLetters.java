package dev.tokenmeter.aggregator;

import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

import java.nio.charset.StandardCharsets;

/** Forwards a record that cannot be processed, unchanged, to the dead-letter topic with the reason in headers. */
final class DeadLetters {

    static final String ERROR = "dlq.error";
    static final String SOURCE_TOPIC = "dlq.source.topic";
    static final String SOURCE_PARTITION = "dlq.source.partition";
    static final String SOURCE_OFFSET = "dlq.source.offset";

    private DeadLetters() {
    }

    static void send(ProcessorContext<String, Object> context, Record<String, byte[]> record, String reason) {
        Headers headers = context.recordMetadata()
                .map(m -> headers(record.headers(), reason, m.topic(), m.partition(), m.offset()))
                .orElseGet(() -> headers(record.headers(), reason, null, -1, -1));
        context.forward(new Record<String, Object>(record.key(), record.value(), record.timestamp(), headers),
                UsageAggregationTopology.SINK_DLQ);
    }

    /** A copy of the record's headers with the reason and, when known, where the record came from. */
    static Headers headers(Headers original, String reason, String sourceTopic, int partition, long offset) {
        Headers headers = new RecordHeaders(original.toArray());
        headers.add(ERROR, utf8(reason.length() > 2000 ? reason.substring(0, 2000) : reason));
        if (sourceTopic != null) {
            headers.add(SOURCE_TOPIC, utf8(sourceTopic));
            headers.add(SOURCE_PARTITION, utf8(Integer.toString(partition)));
            headers.add(SOURCE_OFFSET, utf8(Long.toString(offset)));
        }
        return headers;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
