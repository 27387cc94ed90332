package dev.tokenmeter.local;

import dev.tokenmeter.events.serde.AvroSerde;
import dev.tokenmeter.events.serde.EventSerdes;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Prints a topic's records as JSON lines, decoding Avro single-object encoding by fingerprint — for
 * analysts poking at a local stack: {@code TailTopic <bootstrap> <topic> [maxRecords]}. Reads from the
 * beginning with read_committed and stops after 10 s without new records.
 */
public final class TailTopic {

    private TailTopic() {
    }

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: TailTopic <bootstrap-servers> <topic> [maxRecords]");
            System.exit(2);
        }
        long max = args.length > 2 ? Long.parseLong(args[2]) : Long.MAX_VALUE;
        List<AvroSerde<?>> serdes = List.of(EventSerdes.usageEvent(), EventSerdes.usageTotal(), EventSerdes.usageAlert(),
                EventSerdes.userLimit());
        Map<String, Object> props = Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0],
                ConsumerConfig.GROUP_ID_CONFIG, "tail-" + UUID.randomUUID(),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        long seen = 0;
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props, new StringDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(args[1]));
            long idleSince = System.nanoTime();
            while (seen < max && System.nanoTime() - idleSince < Duration.ofSeconds(10).toNanos()) {
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    idleSince = System.nanoTime();
                    System.out.println(r.key() + "\t" + decode(serdes, r.value()));
                    if (++seen >= max) {
                        break;
                    }
                }
            }
        }
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
