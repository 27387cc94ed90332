package dev.tokenmeter.testkit;

import dev.tokenmeter.testkit.kafka.ExternalKafkaEngine;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The Kafka engine of the configured backend (embedded in CI): a real broker, transactions, restarts. */
@ExtendWith(EnginesExtension.class)
class EmbeddedKafkaIT {

    @Test
    void producesAndConsumesARecord(KafkaEngine kafka) throws Exception {
        String topic = Names.unique("produce-consume");
        kafka.createTopic(topic, 3);

        try (KafkaProducer<String, String> producer = KafkaClients.producer(kafka, Map.of())) {
            producer.send(new ProducerRecord<>(topic, "user-1", "hello")).get();
        }

        assertThat(KafkaClients.consume(kafka, topic, "read_uncommitted", 1)).containsExactly("user-1=hello");
    }

    /** Exactly-once needs the transaction state log, which a single broker only has with replication factor 1. */
    @Test
    void transactionalCommitIsVisibleAndAbortIsNot(KafkaEngine kafka) {
        String topic = Names.unique("txn");
        kafka.createTopic(topic, 1);

        try (KafkaProducer<String, String> producer = KafkaClients.producer(kafka,
                Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, Names.unique("txn-id")))) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", "aborted"));
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", "committed"));
            producer.commitTransaction();
        }

        assertThat(KafkaClients.consume(kafka, topic, "read_committed", 1)).containsExactly("k=committed");
    }

    @Test
    void createTopicIsIdempotentButRejectsAnotherPartitionCount(KafkaEngine kafka) {
        String topic = Names.unique("idempotent");
        kafka.createTopic(topic, 2);
        kafka.createTopic(topic, 2);

        assertThatThrownBy(() -> kafka.createTopic(topic, 4))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining(topic)
                .hasMessageContaining("2 partitions");
    }

    /** Back-dated test events must not be deleted by the broker's default 7-day retention; a caller's own retention wins. */
    @Test
    void testTopicsKeepRecordsUntilDeletedUnlessTheCallerSetsARetention(KafkaEngine kafka) throws Exception {
        String kept = Names.unique("kept");
        String expiring = Names.unique("expiring");
        kafka.createTopic(kept, 1);
        kafka.createTopic(expiring, 1, Map.of("retention.ms", "3600000"));

        ConfigResource keptResource = new ConfigResource(ConfigResource.Type.TOPIC, kept);
        ConfigResource expiringResource = new ConfigResource(ConfigResource.Type.TOPIC, expiring);
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            Map<ConfigResource, Config> configs = admin.describeConfigs(List.of(keptResource, expiringResource)).all().get();
            assertThat(configs.get(keptResource).get("retention.ms").value()).isEqualTo("-1");
            assertThat(configs.get(expiringResource).get("retention.ms").value()).isEqualTo("3600000");
        }
    }

    @Test
    void compactedTopicHasTheCompactCleanupPolicy(KafkaEngine kafka) throws Exception {
        String topic = Names.unique("compacted");
        kafka.createCompactedTopic(topic, 1);

        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            assertThat(config.get("cleanup.policy").value()).isEqualTo("compact");
            assertThat(admin.listTopics().names().get()).contains(topic);
        }
    }

    @Test
    void autoCreationIsOffSoATypoFailsInsteadOfCreatingATopic(KafkaEngine kafka) throws Exception {
        String missing = Names.unique("never-created");
        try (KafkaProducer<String, String> producer = KafkaClients.producer(kafka,
                Map.of(ProducerConfig.MAX_BLOCK_MS_CONFIG, 1500))) {
            assertThatThrownBy(() -> producer.send(new ProducerRecord<>(missing, "k", "v")).get())
                    .hasMessageContaining(missing);
        }
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            assertThat(admin.listTopics().names().get()).doesNotContain(missing);
        }
    }

    @Test
    void stopAndStartKeepTheTopicItsDataAndThePort(KafkaEngine kafka) throws Exception {
        String topic = Names.unique("restart");
        kafka.createTopic(topic, 2);
        try (KafkaProducer<String, String> producer = KafkaClients.producer(kafka, Map.of())) {
            producer.send(new ProducerRecord<>(topic, "a", "before-stop")).get();
        }
        String bootstrap = kafka.bootstrapServers();

        kafka.stop();
        assertThat(kafka.isRunning()).isFalse();
        assertThat(accepts(bootstrap)).as("broker port closed while stopped").isFalse();

        kafka.start();
        assertThat(kafka.isRunning()).isTrue();
        assertThat(kafka.bootstrapServers()).isEqualTo(bootstrap);
        try (KafkaProducer<String, String> producer = KafkaClients.producer(kafka, Map.of())) {
            producer.send(new ProducerRecord<>(topic, "b", "after-start")).get();
        }
        assertThat(KafkaClients.consume(kafka, topic, "read_uncommitted", 2))
                .containsExactlyInAnyOrder("a=before-stop", "b=after-start");

        String createdAfterRestart = Names.unique("after-restart");
        kafka.createTopic(createdAfterRestart, 1);
        kafka.createTopic(topic, 2);
    }

    /** The external backend's Kafka engine, pointed at this broker as if somebody else ran it. */
    @Test
    void externalEngineCreatesTopicsOnARunningClusterButDoesNotStopIt(KafkaEngine kafka) throws Exception {
        String topic = Names.unique("external");
        try (ExternalKafkaEngine external = new ExternalKafkaEngine(kafka.clientSettings())) {
            external.createTopic(topic, 2);
            external.createTopic(topic, 2);
            assertThatThrownBy(external::stop).isInstanceOf(UnsupportedOperationException.class)
                    .hasMessageContaining("tokenmeter.kafka.bootstrap");
        }
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            assertThat(admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions()).hasSize(2);
        }
        assertThat(kafka.isRunning()).isTrue();
    }

    static boolean accepts(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(hostPort.substring(0, colon),
                    Integer.parseInt(hostPort.substring(colon + 1))), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
