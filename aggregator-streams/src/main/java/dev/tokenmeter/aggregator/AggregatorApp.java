package dev.tokenmeter.aggregator;

import dev.tokenmeter.config.ServiceLogging;
import dev.tokenmeter.events.topic.Topics;
import io.micrometer.core.instrument.binder.kafka.KafkaStreamsMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

/**
 * The aggregator service: {@link UsageAggregationTopology} under exactly_once_v2.
 *
 * <p>Input topics: usage-events, user-limits. Output topics: usage-totals-hourly, usage-totals-monthly,
 * usage-totals-final, usage-events-late, usage-alerts, usage-events-dlq (names from {@link Topics}).
 * State lives in RocksDB under STATE_DIR and is never wiped at start-up; a restart resumes from the
 * local state and the changelogs. A record whose processing fails goes to the dead-letter topic and
 * processing continues ({@link ProcessingFailures}); a failing stream thread (Kafka or state-store
 * errors) is replaced rather than killing the process.
 */
public final class AggregatorApp {

    private static final Logger log = LoggerFactory.getLogger(AggregatorApp.class);

    private AggregatorApp() {
    }

    public static void main(String[] args) throws Exception {
        ServiceLogging.check(System.getenv());
        AggregatorConfig config = AggregatorConfig.fromEnv(System.getenv());
        Topics topics = Topics.fromEnv(System.getenv());
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

        // The topics are the deployment's init step's to create (billing-sink ops.Init): this service's principal
        // may read and write them, never create them (docs/adr/0062-kafka-principals-and-acls.md).
        KafkaStreams streams = create(config, topics, new AggregatorMetrics(registry));
        new KafkaStreamsMetrics(streams).bindTo(registry);
        HTTPServer metrics = config.metricsPort() >= 0
                ? HTTPServer.builder().port(config.metricsPort()).registry(registry.getPrometheusRegistry()).buildAndStart()
                : null;

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log.info("shutting down");
            streams.close(Duration.ofSeconds(30));
            if (metrics != null) {
                metrics.stop();
            }
            stopped.countDown();
        }, "aggregator-shutdown"));
        streams.setStateListener((now, before) -> {
            log.info("state {} -> {}", before, now);
            if (now == KafkaStreams.State.RUNNING) {
                log.info("READY application.id={} guarantee={} metrics port {}", config.applicationId(),
                        config.processingGuarantee(), metrics == null ? "off" : metrics.getPort());
            }
        });
        streams.start();
        stopped.await();
    }

    /**
     * The production topology with the production properties and handlers, not started: a record whose
     * processing fails goes to the dead-letter topic ({@link ProcessingFailures}); a thread that fails
     * anyway (Kafka or state-store errors) is replaced.
     */
    public static KafkaStreams create(AggregatorConfig config, Topics topics, AggregatorMetrics metrics) {
        KafkaStreams streams = new KafkaStreams(UsageAggregationTopology.build(config, topics, metrics),
                streamsProperties(config, topics, metrics));
        streams.setUncaughtExceptionHandler(e -> {
            log.error("stream thread failed; replacing it", e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        return streams;
    }

    /** The processing exception handler and what it reads: the dead-letter topic and the metrics to count in. */
    public static Map<String, Object> processingFailureProperties(String deadLetterTopic, AggregatorMetrics metrics) {
        return Map.of(StreamsConfig.PROCESSING_EXCEPTION_HANDLER_CLASS_CONFIG, ProcessingFailures.class,
                StreamsConfig.ERRORS_DEAD_LETTER_QUEUE_TOPIC_NAME_CONFIG, deadLetterTopic,
                ProcessingFailures.METRICS_CONFIG, metrics);
    }

    public static Properties streamsProperties(AggregatorConfig config, Topics topics, AggregatorMetrics metrics) {
        Properties p = new Properties();
        // bootstrap servers and this service's principal (security protocol, SASL login, TLS stores)
        p.putAll(config.kafka().clientProperties());
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, config.applicationId());
        p.put(StreamsConfig.STATE_DIR_CONFIG, config.stateDir());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, config.processingGuarantee());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, config.numStreamThreads());
        p.put(StreamsConfig.NUM_STANDBY_REPLICAS_CONFIG, config.numStandbyReplicas());
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, (int) config.commitInterval().toMillis());
        // No store has a record cache (ADR 0076); none is reserved for them.
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
        // Every RocksDB store's native memory within one shared bound (ADR 0096).
        p.put(StreamsConfig.ROCKSDB_CONFIG_SETTER_CLASS_CONFIG, BoundedRocksDbMemory.class);
        p.put(BoundedRocksDbMemory.MEMORY_BYTES_CONFIG, config.rocksDbMemoryMib() * 1024L * 1024L);
        // A single-broker development cluster; production sets 3 through the environment of the broker defaults.
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, -1);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), 2000);
        // Static membership: a restarted instance takes its tasks back without a rebalance.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG), config.instanceId());
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 30_000);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 10);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "lz4");
        // A send waits SEND_TIMEOUT (default 10 min) for a broker that is away, for metadata and for delivery, instead
        // of the clients' 60 s and 120 s, before its task is marked corrupted and redone from the last commit: an
        // outage shorter than that costs no task restore. Either way no total is lost (ADR 0076).
        long sendTimeoutMs = config.sendTimeout().toMillis();
        long requestTimeoutMs = Math.min(30_000L, Math.max(1_000L, sendTimeoutMs / 2));
        p.put(StreamsConfig.producerPrefix(ProducerConfig.MAX_BLOCK_MS_CONFIG), sendTimeoutMs);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG), (int) requestTimeoutMs);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG),
                (int) Math.min(Integer.MAX_VALUE, Math.max(sendTimeoutMs, requestTimeoutMs + 10)));
        p.putAll(processingFailureProperties(topics.deadLetter().name(), metrics));
        return p;
    }
}
