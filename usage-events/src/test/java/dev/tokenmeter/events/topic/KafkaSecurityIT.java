package dev.tokenmeter.events.topic;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Issue 13, Kafka least privilege, on the real (embedded) broker: SASL/SCRAM and KRaft's StandardAuthorizer with
 * the services' ACLs from {@link ServiceAcls}. Skipped on a backend whose broker does not authenticate.
 */
@ExtendWith(EnginesExtension.class)
class KafkaSecurityIT {

    private static Topics topics;
    private static KafkaClientSettings edge;
    private static KafkaClientSettings sink;
    private static KafkaClientSettings analyst;
    private static String analystGroups;

    @BeforeAll
    static void principals(KafkaEngine kafka) {
        assumeTrue(kafka.secured(), "this Kafka backend does not authenticate clients");
        String prefix = Names.unique("sec") + ".";
        topics = Topics.withPrefix(prefix, 1);
        topics.all().forEach(t -> kafka.createTopic(t.name(), 1));
        String edgeUser = prefix + "edge";
        String sinkUser = prefix + "sink";
        String edgePassword = UUID.randomUUID().toString();
        String sinkPassword = UUID.randomUUID().toString();
        kafka.createPrincipal(edgeUser, edgePassword);
        kafka.createPrincipal(sinkUser, sinkPassword);
        kafka.createAcls(ServiceAcls.edge(edgeUser, topics, prefix + "aggregator-app"));
        kafka.createAcls(ServiceAcls.billingSink(sinkUser, topics, prefix + "billing-sink"));
        String analystUser = prefix + "analyst";
        String analystPassword = UUID.randomUUID().toString();
        analystGroups = prefix + "analyst";
        kafka.createPrincipal(analystUser, analystPassword);
        kafka.createAcls(ServiceAcls.analyst(analystUser, topics, analystGroups));
        analyst = kafka.clientSettings(analystUser, analystPassword);
        edge = kafka.clientSettings(edgeUser, edgePassword);
        sink = kafka.clientSettings(sinkUser, sinkPassword);
    }

    @Test
    void anUnauthenticatedClientCannotConnect(KafkaEngine kafka) {
        Map<String, Object> plaintext = shortTimeouts(Map.<String, Object>of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()));
        try (Admin admin = Admin.create(plaintext)) {
            assertThatThrownBy(() -> admin.describeCluster().nodes().get(15, TimeUnit.SECONDS))
                    .as("a client without SASL gets no answer from the SASL listener")
                    .isInstanceOfAny(ExecutionException.class, java.util.concurrent.TimeoutException.class);
        }
    }

    @Test
    void aWrongPasswordIsAnAuthenticationError(KafkaEngine kafka) {
        try (Admin admin = Admin.create(shortTimeouts(edge.as(edge.username(), "not-the-password").clientProperties()))) {
            assertThatThrownBy(() -> admin.describeCluster().nodes().get(15, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class)
                    .hasCauseInstanceOf(SaslAuthenticationException.class);
        }
    }

    @Test
    void theEdgeWritesUsageEvents() throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = producer(edge)) {
            RecordMetadata written = producer.send(record(topics.usageEvents().name())).get(30, TimeUnit.SECONDS);
            assertThat(written.offset()).isGreaterThanOrEqualTo(0);
            producer.send(record(topics.alerts().name())).get(30, TimeUnit.SECONDS);
            producer.send(record(topics.userLimits().name())).get(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void theEdgeCannotWriteATotalsTopic() {
        try (KafkaProducer<byte[], byte[]> producer = producer(edge)) {
            for (String topic : new String[] {topics.hourlyTotals().name(), topics.finalTotals().name(), topics.deadLetter().name()}) {
                assertThatThrownBy(() -> producer.send(record(topic)).get(30, TimeUnit.SECONDS))
                        .as("the edge writing %s", topic)
                        .isInstanceOf(ExecutionException.class)
                        .hasCauseInstanceOf(TopicAuthorizationException.class);
            }
        }
    }

    @Test
    void theSinkWritesOnlyAlerts() throws Exception {
        // ADR 0086: the upstream reconciler's upstream_difference alerts; nothing else.
        try (KafkaProducer<byte[], byte[]> producer = producer(sink)) {
            producer.send(record(topics.alerts().name())).get(30, TimeUnit.SECONDS);
        }
        for (String topic : new String[] {topics.usageEvents().name(), topics.hourlyTotals().name(), topics.finalTotals().name()}) {
            try (KafkaProducer<byte[], byte[]> producer = producer(sink)) {
                assertThatThrownBy(() -> producer.send(record(topic)).get(30, TimeUnit.SECONDS))
                        // The refusal comes from the send's future or, once the producer is in an error state,
                        // from send() itself, with the authorization error as its cause.
                        .as("the sink writing %s", topic)
                        .hasRootCauseInstanceOf(AuthorizationException.class);
            }
        }
    }

    @Test
    void theAnalystReadsEveryPublicTopicAndWritesNone() throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = producer(edge)) {
            producer.send(record(topics.alerts().name())).get(30, TimeUnit.SECONDS);
        }
        Map<String, Object> props = new HashMap<>(analyst.clientProperties());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, analystGroups + "-it");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topics.alerts().name()));
            AtomicInteger read = new AtomicInteger();
            await("the analyst reads the alert the edge wrote").atMost(Duration.ofSeconds(30))
                    .until(() -> read.addAndGet(consumer.poll(Duration.ofMillis(500)).count()) > 0);
        }
        for (String topic : new String[] {topics.usageEvents().name(), topics.alerts().name(), topics.monthlyTotals().name()}) {
            try (KafkaProducer<byte[], byte[]> producer = producer(analyst)) {
                assertThatThrownBy(() -> producer.send(record(topic)).get(30, TimeUnit.SECONDS))
                        .as("the analyst writing %s (refused on send or on the producer's id request)", topic)
                        .hasRootCauseInstanceOf(AuthorizationException.class);
            }
        }
        Map<String, Object> otherGroup = new HashMap<>(props);
        otherGroup.put(ConsumerConfig.GROUP_ID_CONFIG, prefix() + "billing-sink-ledger");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(otherGroup, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topics.usageEvents().name()));
            assertThatThrownBy(() -> {
                for (int i = 0; i < 60; i++) {
                    consumer.poll(Duration.ofMillis(500));
                }
            }).as("the analyst joining the sink's consumer group").isInstanceOf(GroupAuthorizationException.class);
        }
    }

    private static String prefix() {
        return analystGroups.substring(0, analystGroups.length() - "analyst".length());
    }

    private static ProducerRecord<byte[], byte[]> record(String topic) {
        return new ProducerRecord<>(topic, "k".getBytes(), "v".getBytes());
    }

    private static KafkaProducer<byte[], byte[]> producer(KafkaClientSettings principal) {
        Map<String, Object> props = new HashMap<>(principal.clientProperties());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10_000);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 20_000);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
    }

    private static Map<String, Object> shortTimeouts(Map<String, Object> props) {
        Map<String, Object> p = new HashMap<>(props);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 8_000);
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 1_000);
        return p;
    }

}
