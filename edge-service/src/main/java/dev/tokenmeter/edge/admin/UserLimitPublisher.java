package dev.tokenmeter.edge.admin;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.edge.publish.ReliableProducers;
import dev.tokenmeter.events.UserLimit;
import dev.tokenmeter.events.topic.TopicSpec;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Publishes a user's current monthly credit to the compacted user-limits topic ({@code Topics.userLimits()}), keyed
 * by user id, so the latest value per user wins. Idempotent producer, {@code acks=all}; {@link #publish} waits for
 * the acknowledgement, so the admin API answers only after the aggregator can see the new limit.
 */
public final class UserLimitPublisher implements AutoCloseable {

    private final Producer<String, UserLimit> producer;
    private final String topic;

    public UserLimitPublisher(KafkaClientSettings kafka, TopicSpec<String, UserLimit> topic) {
        Map<String, Object> props = ReliableProducers.properties(kafka, "edge-admin-user-limits", Duration.ofSeconds(10));
        this.producer = new KafkaProducer<>(props, topic.keySerde().serializer(), topic.valueSerde().serializer());
        this.topic = topic.name();
    }

    /** Sends and waits for the acknowledgement; throws when Kafka did not take it (the caller answers 503). */
    public void publish(UserLimit limit) {
        try {
            producer.send(new ProducerRecord<>(topic, null, limit.getUpdatedAt().toEpochMilli(), limit.getUserId(), limit))
                    .get(15, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("user limit for " + limit.getUserId() + " was not acknowledged by Kafka: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while publishing a user limit", e);
        }
    }

    @Override
    public void close() {
        producer.close(Duration.ofSeconds(10));
    }
}
