package dev.tokenmeter.aggregator;

import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.ErrorHandlerContext;
import org.apache.kafka.streams.errors.ProcessingExceptionHandler;
import org.apache.kafka.streams.processor.api.Record;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Map;

/**
 * The aggregator's {@code processing.exception.handler}: a record whose processing throws is sent, with its
 * original key, value and headers, to the dead-letter topic with the error in {@link DeadLetters}' headers,
 * and processing goes on with the next record (ADR 0055). Without it the stream thread died on the record,
 * {@code REPLACE_THREAD} read the same record again, and every user on that partition stopped (issue 14).
 *
 * <p>The processor checks every sum an event changes before it stores anything, so a record that fails here
 * (an overflow, or a bug) leaves no half-counted trace in the state. A Kafka or state-store error is not the
 * record's fault: it fails as before (the thread is replaced and the record is read again), because
 * dead-lettering it would drop a good event. A punctuation that fails has no record to set aside; it runs
 * again at the next interval.
 */
public final class ProcessingFailures implements ProcessingExceptionHandler {

    /** Config key of the {@link AggregatorMetrics} instance to count in (an object, not a string). */
    static final String METRICS_CONFIG = "tokenmeter.aggregator.metrics";

    private static final Logger log = LoggerFactory.getLogger(ProcessingFailures.class);

    private String deadLetterTopic;
    private AggregatorMetrics metrics = AggregatorMetrics.noop();

    @Override
    public void configure(Map<String, ?> configs) {
        Object topic = configs.get(StreamsConfig.ERRORS_DEAD_LETTER_QUEUE_TOPIC_NAME_CONFIG);
        if (topic == null || topic.toString().isBlank()) {
            throw new IllegalArgumentException(StreamsConfig.ERRORS_DEAD_LETTER_QUEUE_TOPIC_NAME_CONFIG
                    + " must name the dead-letter topic for " + getClass().getSimpleName());
        }
        deadLetterTopic = topic.toString();
        if (configs.get(METRICS_CONFIG) instanceof AggregatorMetrics m) {
            metrics = m;
        }
    }

    @Override
    public Response handleError(ErrorHandlerContext context, Record<?, ?> record, Exception exception) {
        metrics.processingFailures.increment();
        if (exception instanceof KafkaException) {
            log.error("processing {}-{}@{} failed in {} ({}); not the record's fault: failing the task so it is retried",
                    context.topic(), context.partition(), context.offset(), context.processorNodeId(), exception.toString());
            return Response.fail();
        }
        String reason = exception.getClass().getSimpleName() + ": " + exception.getMessage();
        if (context.sourceRawValue() == null && context.sourceRawKey() == null) {
            log.error("a punctuation of {} in task {} failed; it runs again at the next interval", context.processorNodeId(),
                    context.taskId(), exception);
            return Response.resume();
        }
        if (exception instanceof ArithmeticException) {
            metrics.overflows.increment();
        }
        metrics.deadLettered.increment();
        log.warn("processing {}-{}@{} failed ({}); record sent to {} and processing continues", context.topic(),
                context.partition(), context.offset(), reason, deadLetterTopic);
        Headers headers = DeadLetters.headers(context.headers(), reason, context.topic(), context.partition(), context.offset());
        return Response.resume(List.of(new ProducerRecord<>(deadLetterTopic, null, context.timestamp(),
                context.sourceRawKey(), context.sourceRawValue(), headers)));
    }
}
