package dev.tokenmeter.edge.publish;

import dev.tokenmeter.config.KafkaClientSettings;
import org.apache.kafka.clients.producer.ProducerConfig;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * Producer settings of the edge's small side publishers (user limits, usage alerts): idempotent, {@code acks=all},
 * five seconds at most blocked on metadata or a full buffer and per request, a bounded delivery timeout.
 */
public final class ReliableProducers {

    private ReliableProducers() {
    }

    public static Map<String, Object> properties(KafkaClientSettings kafka, String clientId, Duration deliveryTimeout) {
        Map<String, Object> props = new HashMap<>(kafka.clientProperties());
        props.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 5_000);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) deliveryTimeout.toMillis());
        return props;
    }
}
