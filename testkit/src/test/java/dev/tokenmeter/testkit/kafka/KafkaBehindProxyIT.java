package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.net.DelayProxy;
import dev.tokenmeter.testkit.support.FreePorts;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 20 ("slow, not dead"): a broker launched behind a {@link DelayProxy} advertises the proxy's port, so clients
 * that bootstrap through the proxy produce and consume through it — they see its delay and stop when it forwards
 * nothing — while clients of the ordinary bootstrap address do not pass through it.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class KafkaBehindProxyIT {

    private static final Duration ONE_WAY = Duration.ofMillis(150);

    private static DelayProxy proxy;
    private static EmbeddedKafkaEngine kafka;

    @BeforeAll
    static void startsABrokerBehindAProxy() {
        int listenerPort = FreePorts.pick();
        proxy = DelayProxy.start("127.0.0.1", listenerPort);
        kafka = EmbeddedKafkaEngine.launchBehindProxy(listenerPort, proxy.port());
    }

    @AfterAll
    static void stops() {
        if (kafka != null) {
            kafka.close();
        }
        if (proxy != null) {
            proxy.close();
        }
    }

    @Test
    void clientsBootstrappedThroughTheProxyStayOnItAndSeeItsDelay() throws Exception {
        String topic = Names.unique("behind-proxy");
        kafka.createTopic(topic, 1);
        assertThat(kafka.proxiedBootstrapServers()).isEqualTo("127.0.0.1:" + proxy.port());

        try (KafkaProducer<String, String> producer = producer(kafka.proxiedClientSettings().clientProperties())) {
            Duration fast = fastestSend(producer, topic);
            assertThat(proxy.openConnections()).as("the producer's connections go through the proxy").isPositive();

            proxy.delay(ONE_WAY, Duration.ZERO);
            Duration slow = fastestSend(producer, topic);
            assertThat(slow).as("acks=all send with %s added each way (without: %s)", ONE_WAY, fast)
                    .isGreaterThanOrEqualTo(ONE_WAY.multipliedBy(2));

            // A dead network: if the producer had a direct connection to the broker, this send would complete.
            proxy.delay(Duration.ZERO, Duration.ZERO).blackhole(true);
            Future<RecordMetadata> held = producer.send(new ProducerRecord<>(topic, "k", "held"));
            Thread.sleep(1_000); // the absence of an outcome over a fixed time is what is tested
            assertThat(held).as("a send while the proxy forwards nothing").isNotDone();
            proxy.blackhole(false);
            assertThat(held.get(30, TimeUnit.SECONDS).offset()).isNotNegative();
        }

        proxy.delay(ONE_WAY, Duration.ZERO);
        long start = System.nanoTime();
        List<String> seen = consume(kafka.proxiedClientSettings().clientProperties(), topic, 7);
        assertThat(seen).as("every record, read through the delayed proxy").hasSize(7).contains("k=held");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).as("a consumer through the proxy waits for it")
                .isGreaterThanOrEqualTo(ONE_WAY.multipliedBy(2));

        // The ordinary address bypasses the proxy: with the proxy forwarding nothing it still reads everything.
        proxy.delay(Duration.ZERO, Duration.ZERO).blackhole(true);
        try {
            assertThat(consume(kafka.clientProperties(), topic, 7)).hasSize(7);
        } finally {
            proxy.blackhole(false);
        }
    }

    /** The fastest of three sends, so one stall of a busy box cannot make the "fast" case slow. */
    private static Duration fastestSend(KafkaProducer<String, String> producer, String topic) throws Exception {
        Duration fastest = null;
        for (int i = 0; i < 3; i++) {
            long start = System.nanoTime();
            producer.send(new ProducerRecord<>(topic, "k", "v" + i)).get(30, TimeUnit.SECONDS);
            Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
            fastest = fastest == null || elapsed.compareTo(fastest) < 0 ? elapsed : fastest;
        }
        return fastest;
    }

    private static KafkaProducer<String, String> producer(Map<String, Object> client) {
        Map<String, Object> props = new HashMap<>(client);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        return new KafkaProducer<>(props);
    }

    private static List<String> consume(Map<String, Object> client, String topic, int expected) {
        Map<String, Object> props = new HashMap<>(client);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, Names.unique("group"));
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        List<String> seen = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic));
            await(expected + " records on " + topic).atMost(Duration.ofSeconds(60)).until(() -> {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    seen.add(r.key() + "=" + r.value());
                }
                return seen.size() >= expected;
            });
        }
        return seen;
    }
}
