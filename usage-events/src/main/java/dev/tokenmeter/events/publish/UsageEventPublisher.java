package dev.tokenmeter.events.publish;

import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.topic.TopicSpec;
import dev.tokenmeter.events.validate.UsageEventValidator;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * Publishes {@link UsageEvent}s for app servers that embed the metering contract.
 *
 * <p>An idempotent producer with {@code acks=all}: the broker deduplicates the producer's own retries,
 * and a send completes only when every in-sync replica has the event. Events are keyed by user id, so
 * one user's events stay in one partition and in order; the record timestamp is the call's
 * {@code occurredAt}. Downstream dedup by event id still guards
 * against a caller that publishes the same call twice (e.g. after its own restart).
 *
 * <p>Thread-safe; create one per process and close it on shutdown (close flushes).
 */
public final class UsageEventPublisher implements AutoCloseable {

    private final Producer<String, UsageEvent> producer;
    private final TopicSpec<String, UsageEvent> topic;

    UsageEventPublisher(Producer<String, UsageEvent> producer, TopicSpec<String, UsageEvent> topic) {
        this.producer = producer;
        this.topic = topic;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Validates and sends the event. The future completes when the broker has acknowledged it with
     * {@code acks=all}, or fails with the send error; an invalid event fails immediately with
     * {@link dev.tokenmeter.events.validate.InvalidUsageEventException} and is not sent.
     */
    public CompletableFuture<RecordMetadata> publish(UsageEvent event) {
        CompletableFuture<RecordMetadata> result = new CompletableFuture<>();
        try {
            UsageEventValidator.requireValid(event);
            // The record timestamp is the call's occurredAt: Kafka Streams' stream time is then event time.
            producer.send(new ProducerRecord<>(topic.name(), null, event.getOccurredAt().toEpochMilli(),
                    event.getUserId(), event), (metadata, error) -> {
                if (error != null) {
                    result.completeExceptionally(error);
                } else {
                    result.complete(metadata);
                }
            });
        } catch (RuntimeException e) {
            result.completeExceptionally(e);
        }
        return result;
    }

    /** Blocks until every event sent so far is acknowledged or failed. */
    public void flush() {
        producer.flush();
    }

    @Override
    public void close() {
        producer.close(Duration.ofSeconds(30));
    }

    public String topicName() {
        return topic.name();
    }

    public static final class Builder {
        private final Map<String, Object> connection = new HashMap<>();
        private TopicSpec<String, UsageEvent> topic;
        private String clientId = "usage-event-publisher";
        private Duration deliveryTimeout = Duration.ofMinutes(2);
        private final Map<String, Object> overrides = new HashMap<>();

        /** A broker without security; {@link #connection} for one that authenticates. */
        public Builder bootstrapServers(String bootstrapServers) {
            connection.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
            return this;
        }

        /**
         * Where and as whom to connect: bootstrap.servers plus security.protocol, sasl.* and ssl.* (service-config's
         * {@code KafkaClientSettings.clientProperties()}).
         */
        public Builder connection(Map<String, ?> clientProperties) {
            connection.putAll(clientProperties);
            return this;
        }

        public Builder topic(TopicSpec<String, UsageEvent> topic) {
            this.topic = topic;
            return this;
        }

        public Builder clientId(String clientId) {
            this.clientId = clientId;
            return this;
        }

        /** How long a send may keep retrying before its future fails (Kafka's delivery.timeout.ms). */
        public Builder deliveryTimeout(Duration deliveryTimeout) {
            this.deliveryTimeout = deliveryTimeout;
            return this;
        }

        /** Any other producer setting; the durability settings (acks, idempotence) cannot be weakened. */
        public Builder producerProperty(String key, Object value) {
            overrides.put(key, value);
            return this;
        }

        public UsageEventPublisher build() {
            Objects.requireNonNull(connection.get(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG), "bootstrapServers");
            Objects.requireNonNull(topic, "topic");
            Map<String, Object> props = new HashMap<>(overrides);
            props.putAll(connection);
            props.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
            props.put(ProducerConfig.ACKS_CONFIG, "all");
            props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
            props.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
            props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) deliveryTimeout.toMillis());
            props.putIfAbsent(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) Math.min(30_000, deliveryTimeout.toMillis()));
            props.putIfAbsent(ProducerConfig.LINGER_MS_CONFIG, 5);
            props.putIfAbsent(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
            return new UsageEventPublisher(
                    new KafkaProducer<>(props, topic.keySerde().serializer(), topic.valueSerde().serializer()), topic);
        }
    }
}
