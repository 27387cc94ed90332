package dev.tokenmeter.local;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.events.serde.AvroSerde;
import dev.tokenmeter.events.serde.EventSerdes;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.io.PrintStream;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Prints a topic's records as JSON lines, decoding Avro single-object encoding by fingerprint — for analysts
 * poking at a stack: {@code TailTopic <topic> [maxRecords]}. The connection is the services' {@code KAFKA_*}
 * environment ({@link KafkaClientSettings}: bootstrap servers, SASL login, TLS), so it logs in as a principal as
 * every service does; the local stack writes an analyst's read-only login to {@code <logs>/analyst-kafka.env}.
 * Its consumer group starts with {@code KAFKA_GROUP_PREFIX} (default {@code analyst}, the prefix the analyst
 * principal may use). Reads from the beginning with read_committed and stops after 10 s without new records.
 * Exit status 1 with one line on stderr when it cannot log in or may not read the topic.
 */
public final class TailTopic {

    static final Duration IDLE = Duration.ofSeconds(10);

    private TailTopic() {
    }

    public static void main(String[] args) {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: TailTopic <topic> [maxRecords]   (connection from KAFKA_BOOTSTRAP_SERVERS, "
                    + "KAFKA_SECURITY_PROTOCOL, KAFKA_USERNAME, KAFKA_PASSWORD, ...)");
            System.exit(2);
        }
        long max = args.length > 1 ? Long.parseLong(args[1]) : Long.MAX_VALUE;
        KafkaClientSettings kafka;
        try {
            kafka = KafkaClientSettings.fromEnv(System.getenv());
        } catch (IllegalArgumentException e) {
            System.err.println("TailTopic: " + e.getMessage());
            System.exit(2);
            return;
        }
        String groupPrefix = System.getenv().getOrDefault("KAFKA_GROUP_PREFIX", "analyst");
        System.exit(tail(kafka, groupPrefix, args[0], max, IDLE, System.out, System.err));
    }

    /** Prints up to {@code max} records of {@code topic}; returns the exit status (0, or 1 with a line on {@code err}). */
    static int tail(KafkaClientSettings kafka, String groupPrefix, String topic, long max, Duration idle,
                    PrintStream out, PrintStream err) {
        String who = kafka.authenticates() ? " as " + kafka.username() : "";
        // A consumer that cannot log in or read only retries quietly; ask once, with a deadline, and say why.
        Map<String, Object> adminProps = new HashMap<>(kafka.clientProperties());
        adminProps.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15_000);
        adminProps.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        try (Admin admin = Admin.create(adminProps)) {
            admin.describeTopics(List.of(topic)).allTopicNames().get(20, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            err.println("TailTopic: cannot read " + topic + " at " + kafka.bootstrapServers() + who + ": "
                    + e.getCause().getMessage());
            return 1;
        } catch (TimeoutException e) {
            err.println("TailTopic: no answer from " + kafka.bootstrapServers() + who + " within 20 s"
                    + " (wrong address, or a listener that expects another KAFKA_SECURITY_PROTOCOL)");
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }

        List<AvroSerde<?>> serdes = List.of(EventSerdes.usageEvent(), EventSerdes.usageTotal(), EventSerdes.usageAlert(),
                EventSerdes.userLimit());
        Map<String, Object> props = new HashMap<>(kafka.clientProperties());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, groupPrefix + "-tail-" + UUID.randomUUID());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        long seen = 0;
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props, new StringDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            long idleSince = System.nanoTime();
            while (seen < max && System.nanoTime() - idleSince < idle.toNanos()) {
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    idleSince = System.nanoTime();
                    out.println(r.key() + "\t" + decode(serdes, r.value()));
                    if (++seen >= max) {
                        break;
                    }
                }
            }
        }
        return 0;
    }

    private static String decode(List<AvroSerde<?>> serdes, byte[] value) {
        if (value == null) {
            return "null";
        }
        for (AvroSerde<?> serde : serdes) {
            try {
                return serde.decode(value).toString();
            } catch (RuntimeException notThisType) {
                // try the next record type
            }
        }
        return "<" + value.length + " undecodable bytes>";
    }
}
