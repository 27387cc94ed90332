package dev.tokenmeter.aggregator;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.ErrorHandlerContext;
import org.apache.kafka.streams.errors.ProcessingExceptionHandler;
import org.apache.kafka.streams.errors.ProcessorStateException;
import org.apache.kafka.streams.processor.TaskId;
import org.apache.kafka.streams.processor.api.Record;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** Issue 14, finding 3: a record whose processing fails goes to the DLQ with the error in headers, and processing goes on. */
class ProcessingFailuresTest {

    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final ProcessingFailures handler = new ProcessingFailures();

    @BeforeEach
    void configure() {
        Map<String, Object> configs = new HashMap<>(AggregatorApp.processingFailureProperties("usage-events-dlq",
                new AggregatorMetrics(registry)));
        configs.put(StreamsConfig.APPLICATION_ID_CONFIG, "aggregator-test");
        handler.configure(configs);
    }

    @Test
    void aFailedRecordGoesToTheDeadLetterTopicWithTheErrorInHeadersAndProcessingResumes() {
        Headers original = new RecordHeaders().add("trace", "abc".getBytes(StandardCharsets.UTF_8));
        ProcessingExceptionHandler.Response response = handler.handleError(
                context("usage-events", 2, 41, original, "user-7".getBytes(StandardCharsets.UTF_8), new byte[] {1, 2, 3}),
                new Record<>("user-7", new byte[] {1, 2, 3}, 1_000L),
                new ArithmeticException("the MONTH total would overflow costNanoUsd"));

        assertThat(response.result()).isEqualTo(ProcessingExceptionHandler.Result.RESUME);
        assertThat(response.deadLetterQueueRecords()).singleElement().satisfies(dead -> {
            assertThat(dead.topic()).isEqualTo("usage-events-dlq");
            assertThat(dead.key()).isEqualTo("user-7".getBytes(StandardCharsets.UTF_8));
            assertThat(dead.value()).isEqualTo(new byte[] {1, 2, 3});
            assertThat(header(dead, DeadLetters.ERROR))
                    .isEqualTo("ArithmeticException: the MONTH total would overflow costNanoUsd");
            assertThat(header(dead, DeadLetters.SOURCE_TOPIC)).isEqualTo("usage-events");
            assertThat(header(dead, DeadLetters.SOURCE_PARTITION)).isEqualTo("2");
            assertThat(header(dead, DeadLetters.SOURCE_OFFSET)).isEqualTo("41");
            assertThat(header(dead, "trace")).as("the record's own headers are kept").isEqualTo("abc");
        });
        assertThat(registry.get("aggregator_processing_failures").counter().count()).isEqualTo(1);
        assertThat(registry.get("aggregator_overflows").counter().count()).isEqualTo(1);
        assertThat(registry.get("aggregator_dead_letters").counter().count()).isEqualTo(1);
    }

    @Test
    void aStateStoreFailureIsNotTheRecordsFaultAndFails() {
        // Not the record's fault: dead-lettering it would drop a good event; the thread is replaced and the record retried.
        ProcessingExceptionHandler.Response response = handler.handleError(
                context("usage-events", 0, 5, new RecordHeaders(), null, new byte[] {9}),
                new Record<>("user-7", new byte[] {9}, 1_000L), new ProcessorStateException("rocksdb is closed"));

        assertThat(response.result()).isEqualTo(ProcessingExceptionHandler.Result.FAIL);
        assertThat(response.deadLetterQueueRecords()).isEmpty();
    }

    @Test
    void aFailedPunctuationHasNoRecordToSetAsideAndResumes() {
        ProcessingExceptionHandler.Response response = handler.handleError(
                context(null, -1, -1, new RecordHeaders(), null, null), null, new IllegalStateException("boom"));

        assertThat(response.result()).isEqualTo(ProcessingExceptionHandler.Result.RESUME);
        assertThat(response.deadLetterQueueRecords()).isEmpty();
        assertThat(registry.get("aggregator_processing_failures").counter().count()).isEqualTo(1);
    }

    private static String header(ProducerRecord<byte[], byte[]> record, String name) {
        Header h = record.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private static ErrorHandlerContext context(String topic, int partition, long offset, Headers headers, byte[] rawKey,
                                               byte[] rawValue) {
        return new ErrorHandlerContext() {
            @Override
            public String topic() {
                return topic;
            }

            @Override
            public int partition() {
                return partition;
            }

            @Override
            public long offset() {
                return offset;
            }

            @Override
            public Headers headers() {
                return headers;
            }

            @Override
            public String processorNodeId() {
                return UsageAggregationTopology.AGGREGATE;
            }

            @Override
            public TaskId taskId() {
                return new TaskId(0, Math.max(partition, 0));
            }

            @Override
            public long timestamp() {
                return 1_000L;
            }

            @Override
            public byte[] sourceRawKey() {
                return rawKey;
            }

            @Override
            public byte[] sourceRawValue() {
                return rawValue;
            }
        };
    }
}
