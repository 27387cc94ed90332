package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.RedisEngine;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** The load program's probes (issue 20) against the testkit's real engines and this JVM. */
@ExtendWith(EnginesExtension.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ProbesIT {

    @Test
    void rssAndFileDescriptorsOfThisJvm(@TempDir Path dir) throws Exception {
        long pid = ProcessHandle.current().pid();
        assertThat(Probes.rssBytes(pid)).as("a JVM's RSS").isGreaterThan(10L << 20);
        long before = Probes.openFileDescriptors(pid);
        assertThat(before).isPositive();
        List<FileChannel> open = new ArrayList<>();
        try {
            for (int i = 0; i < 20; i++) {
                open.add(FileChannel.open(dir.resolve("f" + i), StandardOpenOption.CREATE, StandardOpenOption.WRITE));
            }
            // other threads of this JVM may open or close a descriptor meanwhile; 20 more must still show
            assertThat(Probes.openFileDescriptors(pid)).isGreaterThanOrEqualTo(before + 15);
        } finally {
            for (FileChannel c : open) {
                c.close();
            }
        }
    }

    @Test
    void redisUsedMemoryGrowsByWhatIsStored(RedisEngine engine) {
        RedisClient client = RedisClient.create(engine.uri());
        try (StatefulRedisConnection<String, String> connection = client.connect()) {
            RedisCommands<String, String> redis = connection.sync();
            Probes.RedisMemory before = Probes.redisMemory(redis);
            assertThat(before.usedBytes()).isPositive();
            assertThat(before.maxBytes()).isNotNegative();
            String key = Names.unique("probes-it");
            redis.set(key, "x".repeat(1 << 20));
            try {
                assertThat(Probes.redisMemory(redis).usedBytes()).as("after storing 1 MiB")
                        .isGreaterThanOrEqualTo(before.usedBytes() + (1 << 20) - (64 << 10));
            } finally {
                redis.del(key);
            }
        } finally {
            client.shutdown();
        }
    }

    @Test
    void aPostgresConnectionHeldShowsUpUnderItsUserAndApplication(PostgresEngine engine) throws Exception {
        String app = Names.unique("probes-it-held");
        String key = engine.user() + "/" + app;
        Properties props = new Properties();
        props.setProperty("user", engine.user());
        props.setProperty("password", engine.password());
        props.setProperty("ApplicationName", app);
        try (Connection asker = DriverManager.getConnection(engine.jdbcUrl("postgres"), engine.user(), engine.password())) {
            try (Connection held1 = DriverManager.getConnection(engine.jdbcUrl("postgres"), props);
                 Connection held2 = DriverManager.getConnection(engine.jdbcUrl("postgres"), props)) {
                assertThat(held1.isValid(5) && held2.isValid(5)).isTrue();
                assertThat(Probes.postgresConnections(asker)).containsEntry(key, 2L);
            }
            await("the closed connections leave pg_stat_activity").atMost(Duration.ofSeconds(10))
                    .until(() -> !Probes.postgresConnections(asker).containsKey(key));
        }
    }

    @Test
    void aConsumerGroupWithAKnownLagReportsExactlyThatLag(KafkaEngine kafka) throws Exception {
        String topic = Names.unique("probes-it-lag");
        String group = Names.unique("probes-it-group");
        kafka.createTopic(topic, 2);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(kafka.clientProperties(Map.of(
                ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName(),
                ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName(),
                ProducerConfig.ACKS_CONFIG, "all")))) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get(30, TimeUnit.SECONDS);
            }
            for (int i = 0; i < 4; i++) {
                producer.send(new ProducerRecord<>(topic, 1, "k" + i, "v" + i)).get(30, TimeUnit.SECONDS);
            }
        }
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            // the group consumed 3 of partition 0's 10 records and all 4 of partition 1's
            admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(3), p1, new OffsetAndMetadata(4)))
                    .all().get(30, TimeUnit.SECONDS);
            assertThat(Probes.consumerLag(admin, group)).containsExactly(Map.entry(p0, 7L), Map.entry(p1, 0L));
            assertThat(Probes.totalConsumerLag(admin, group)).isEqualTo(7);
            assertThat(Probes.consumerLag(admin, Names.unique("probes-it-no-group"))).isEmpty();
        }
    }
}
