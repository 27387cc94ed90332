package dev.tokenmeter.testkit;

import dev.tokenmeter.testkit.kafka.EmbeddedKafkaCluster;
import dev.tokenmeter.testkit.kafka.EmbeddedKafkaEngine;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.NotEnoughReplicasException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * Issue 18 / ADR 0084: the testkit's three-broker KRaft cluster. Acknowledged records (acks=all, idempotence) survive a
 * SIGKILL of the broker leading the topic's partitions and its restart, each read back exactly once; with one broker
 * of three alive, min.insync.replicas=2 refuses an acks=all write.
 */
class EmbeddedKafkaClusterIT {

    private static EmbeddedKafkaCluster cluster;

    @BeforeAll
    static void startCluster() {
        cluster = EmbeddedKafkaCluster.launch();
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void everyAcknowledgedRecordIsReadOnceThroughAKillAndRestartOfTheLeadersBroker() throws Exception {
        String topic = Names.unique("cluster-acks");
        cluster.createTopic(topic, 3);
        assertThat(cluster.inSyncReplicas(topic).values()).as("RF 3, all in sync")
                .allSatisfy(isr -> assertThat(isr).containsExactlyInAnyOrder(1, 2, 3));

        Set<String> acked = ConcurrentHashMap.newKeySet();
        Set<String> failed = ConcurrentHashMap.newKeySet();
        AtomicBoolean producing = new AtomicBoolean(true);
        AtomicInteger sent = new AtomicInteger();
        Thread writer = new Thread(() -> {
            try (KafkaProducer<String, String> producer = KafkaClients.producer(cluster, Map.of(
                    ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                    ProducerConfig.LINGER_MS_CONFIG, 5,
                    ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60_000))) {
                while (producing.get()) {
                    String value = "r" + sent.getAndIncrement();
                    producer.send(new ProducerRecord<>(topic, value, value), (metadata, error) ->
                            (error == null ? acked : failed).add(value));
                    if (sent.get() % 20 == 0) {
                        Thread.sleep(10); // a steady load (<= 2,000 records/s), not a flood the 2-core box spends the test on
                    }
                }
                producer.flush();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "cluster-writer");
        writer.start();
        try {
            await("first acknowledgements").atMost(Duration.ofSeconds(30)).until(() -> acked.size() > 1_000);

            EmbeddedKafkaEngine victim = cluster.leadersBroker(topic);
            cluster.kill(victim);
            int ackedAtKill = acked.size();
            await("leaders moved off the killed broker " + victim.nodeId()).atMost(Duration.ofSeconds(30))
                    .until(() -> !cluster.leaders(topic).containsValue(victim.nodeId()) && !cluster.leaders(topic).containsValue(-1));
            await("acknowledgements continue with broker " + victim.nodeId() + " dead").atMost(Duration.ofSeconds(30))
                    .until(() -> acked.size() > ackedAtKill + 1_000);
            assertThat(cluster.inSyncReplicas(topic).values()).as("the dead broker left every ISR")
                    .allSatisfy(isr -> assertThat(isr).hasSize(2).doesNotContain(victim.nodeId()));

            phase("broker " + victim.nodeId() + " killed, leaders moved, " + acked.size() + " acknowledged");
            cluster.restart(victim);
            phase("broker restarted");
            cluster.awaitFullyReplicated(topic);
            phase("fully replicated again");
            int ackedAtRestart = acked.size();
            await("acknowledgements continue after the restart").atMost(Duration.ofSeconds(30))
                    .until(() -> acked.size() > ackedAtRestart + 1_000);
        } finally {
            producing.set(false);
            writer.join(TimeUnit.SECONDS.toMillis(90));
        }
        phase("writer stopped after " + sent.get() + " sends");
        assertThat(writer.isAlive()).as("the writer finished").isFalse();
        assertThat(acked.size() + failed.size()).as("every send has its answer").isEqualTo(sent.get());

        Map<String, Integer> read = readAll(topic, sent.get() - failed.size());
        assertThat(read.keySet()).as("every acknowledged record is on the topic").containsAll(acked);
        assertThat(read.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList())
                .as("records written more than once (idempotent producer)").isEmpty();
    }

    @Test
    void anAcksAllWriteWithOneBrokerOfThreeAliveIsRefused() throws Exception {
        String topic = Names.unique("cluster-min-isr");
        cluster.createTopic(topic, 1);
        EmbeddedKafkaEngine survivor = cluster.leaderOf(topic, 0);
        List<EmbeddedKafkaEngine> others = cluster.brokers().stream().filter(b -> b != survivor).toList();
        try {
            others.forEach(cluster::kill);
            await("the ISR shrinks to the survivor " + survivor.nodeId()).atMost(Duration.ofSeconds(30))
                    .until(() -> cluster.inSyncReplicas(topic).get(0).equals(Set.of(survivor.nodeId())));
            try (KafkaProducer<String, String> producer = KafkaClients.producer(cluster, Map.of(
                    ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false,
                    ProducerConfig.RETRIES_CONFIG, 0,
                    ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000,
                    ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 20_000))) {
                assertThatThrownBy(() -> producer.send(new ProducerRecord<>(topic, "k", "alone")).get(40, TimeUnit.SECONDS))
                        .as("acks=all with 1 in-sync replica of the 2 required")
                        .isInstanceOf(ExecutionException.class)
                        .hasCauseInstanceOf(NotEnoughReplicasException.class);
            }
        } finally {
            others.forEach(cluster::restart);
        }
        cluster.awaitFullyReplicated(topic);
        try (KafkaProducer<String, String> producer = KafkaClients.producer(cluster, Map.of())) {
            assertThat(producer.send(new ProducerRecord<>(topic, "k", "back")).get(30, TimeUnit.SECONDS).offset())
                    .as("written once two more brokers are back").isGreaterThanOrEqualTo(0);
        }
    }

    private static void phase(String what) {
        System.out.printf("EmbeddedKafkaClusterIT %tT %s%n", System.currentTimeMillis(), what);
    }

    /** Reads the topic from the start until {@code atLeast} records came, then until a poll brings nothing new. */
    private static Map<String, Integer> readAll(String topic, int atLeast) {
        Map<String, Integer> counts = new HashMap<>();
        AtomicInteger total = new AtomicInteger();
        try (KafkaConsumer<String, String> consumer = KafkaClients.consumer(cluster, "read_committed")) {
            consumer.subscribe(List.of(topic));
            await(atLeast + " records on " + topic).atMost(Duration.ofSeconds(60)).until(() -> {
                int before = total.get();
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    counts.merge(r.value(), 1, Integer::sum);
                    total.incrementAndGet();
                }
                return total.get() >= atLeast && total.get() == before;
            });
        }
        return counts;
    }
}
