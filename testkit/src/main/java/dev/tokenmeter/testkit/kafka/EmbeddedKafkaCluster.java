package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.support.FreePorts;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

/**
 * A replicated Kafka cluster of real brokers (ADR 0084): three KRaft brokers (node ids 1, 2, 3) and one dedicated
 * KRaft controller (node id 0), each an {@link EmbeddedKafkaEngine} in its own forked JVM, secured as the single
 * engine is (SASL/SCRAM-SHA-512 with {@link EmbeddedKafkaEngine#ADMIN} as super user, StandardAuthorizer).
 * Every topic, the internal ones included ({@code __consumer_offsets}, {@code __transaction_state}), has replication
 * factor {@value #REPLICATION_FACTOR} and {@code min.insync.replicas} {@value #MIN_INSYNC_REPLICAS} by the brokers'
 * defaults, so a service's own topics (Kafka Streams' changelogs and repartition topics) get them with no setting.
 *
 * <p>The brokers are what a drill kills: {@link #kill(EmbeddedKafkaEngine)} is SIGKILL, {@link #restart} starts the
 * broker again on its port with its data, {@link #leaderOf} / {@link #leadersBroker} say which broker leads a topic's
 * partitions now. The controller is never killed by the testkit (a real cluster runs three; ADR 0084 says why one here).
 */
public final class EmbeddedKafkaCluster implements KafkaEngine, AutoCloseable {

    public static final int BROKERS = 3;
    public static final int REPLICATION_FACTOR = 3;
    public static final int MIN_INSYNC_REPLICAS = 2;
    private static final int CONTROLLER_ID = 0;
    private static final String HOST = "127.0.0.1";
    private static final Duration AWAIT_TIMEOUT = Duration.ofSeconds(60);

    private final EmbeddedKafkaEngine controller;
    private final List<EmbeddedKafkaEngine> brokers;
    private final KafkaClientSettings admin;
    private final KafkaTopics topics;

    private EmbeddedKafkaCluster(EmbeddedKafkaEngine controller, List<EmbeddedKafkaEngine> brokers, String adminPassword) {
        this.controller = controller;
        this.brokers = List.copyOf(brokers);
        this.admin = KafkaClientSettings.scram(
                brokers.stream().map(EmbeddedKafkaEngine::bootstrapServers).collect(Collectors.joining(",")),
                EmbeddedKafkaEngine.ADMIN, adminPassword);
        this.topics = new KafkaTopics(admin.clientProperties());
    }

    /** Forks the controller, then the three brokers at once; returns when all three are registered. */
    public static EmbeddedKafkaCluster launch() {
        String clusterId = Uuid.randomUuid().toString();
        String adminPassword = Uuid.randomUuid().toString().replace("-", "");
        Set<Integer> taken = new HashSet<>();
        int controllerPort = freePort(taken);
        String voters = CONTROLLER_ID + "@" + HOST + ":" + controllerPort;
        EmbeddedKafkaEngine controller = EmbeddedKafkaEngine.launchMember(
                new EmbeddedKafkaEngine.Member(CONTROLLER_ID, false, true, voters, REPLICATION_FACTOR, MIN_INSYNC_REPLICAS),
                clusterId, adminPassword, 0, controllerPort);
        List<CompletableFuture<EmbeddedKafkaEngine>> starting = new ArrayList<>();
        for (int id = 1; id <= BROKERS; id++) {
            EmbeddedKafkaEngine.Member member =
                    new EmbeddedKafkaEngine.Member(id, true, false, voters, REPLICATION_FACTOR, MIN_INSYNC_REPLICAS);
            int brokerPort = freePort(taken);
            starting.add(CompletableFuture.supplyAsync(() ->
                    EmbeddedKafkaEngine.launchMember(member, clusterId, adminPassword, brokerPort, controllerPort)));
        }
        List<EmbeddedKafkaEngine> brokers = new ArrayList<>();
        RuntimeException failure = null;
        for (CompletableFuture<EmbeddedKafkaEngine> broker : starting) {
            try {
                brokers.add(broker.join());
            } catch (CompletionException e) {
                RuntimeException cause = e.getCause() instanceof RuntimeException r ? r : e;
                if (failure == null) {
                    failure = cause;
                } else {
                    failure.addSuppressed(cause);
                }
            }
        }
        EmbeddedKafkaCluster cluster = new EmbeddedKafkaCluster(controller, brokers, adminPassword);
        if (failure != null) {
            cluster.close();
            throw failure;
        }
        try {
            cluster.awaitBrokers(BROKERS);
        } catch (RuntimeException e) {
            cluster.close();
            throw e;
        }
        return cluster;
    }

    /** Every broker's address, comma separated (a client needs any one that runs). */
    @Override
    public String bootstrapServers() {
        return admin.bootstrapServers();
    }

    @Override
    public KafkaClientSettings clientSettings() {
        return admin;
    }

    @Override
    public int replicationFactor() {
        return REPLICATION_FACTOR;
    }

    /** The topic with replication factor 3 and min.insync.replicas 2 (brokers' defaults; {@code configs} may override). */
    @Override
    public void createTopic(String name, int partitions, Map<String, String> configs) {
        topics.create(name, partitions, configs);
    }

    /** The brokers, node ids 1, 2, 3 in that order. */
    public List<EmbeddedKafkaEngine> brokers() {
        return brokers;
    }

    public EmbeddedKafkaEngine broker(int nodeId) {
        return brokers.stream().filter(b -> b.nodeId() == nodeId).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no broker with node id " + nodeId));
    }

    /** SIGKILL one broker; the controller fences it ~6 s later (leaders move, it leaves every ISR). */
    public void kill(EmbeddedKafkaEngine broker) {
        broker.kill();
    }

    /** Starts a killed or stopped broker again on its port with its data; returns once it has registered. */
    public void restart(EmbeddedKafkaEngine broker) {
        broker.start();
    }

    /** The node id of the broker leading each partition of {@code topic} now, by partition (-1: no leader). */
    public Map<Integer, Integer> leaders(String topic) {
        Map<Integer, Integer> leaders = new TreeMap<>();
        for (TopicPartitionInfo p : describe(topic).partitions()) {
            leaders.put(p.partition(), p.leader() == null || p.leader().isEmpty() ? -1 : p.leader().id());
        }
        return leaders;
    }

    /** The running broker that leads {@code partition} of {@code topic} now. */
    public EmbeddedKafkaEngine leaderOf(String topic, int partition) {
        int id = leaders(topic).getOrDefault(partition, -1);
        if (id < 0) {
            throw new IllegalStateException("partition " + topic + "-" + partition + " has no leader now");
        }
        return broker(id);
    }

    /**
     * The broker leading most partitions of {@code topic} (ties: the lowest node id): the one whose death moves the
     * most leaders, "the partition leaders' broker" of a drill.
     */
    public EmbeddedKafkaEngine leadersBroker(String topic) {
        Map<Integer, Long> counts = leaders(topic).values().stream().filter(id -> id >= 0)
                .collect(Collectors.groupingBy(id -> id, TreeMap::new, Collectors.counting()));
        if (counts.isEmpty()) {
            throw new IllegalStateException("topic " + topic + " has no partition with a leader now");
        }
        long most = counts.values().stream().mapToLong(Long::longValue).max().orElseThrow();
        return broker(counts.entrySet().stream().filter(e -> e.getValue() == most).findFirst().orElseThrow().getKey());
    }

    /** The in-sync replicas of each partition of {@code topic}, by partition (node ids). */
    public Map<Integer, Set<Integer>> inSyncReplicas(String topic) {
        Map<Integer, Set<Integer>> isr = new TreeMap<>();
        for (TopicPartitionInfo p : describe(topic).partitions()) {
            isr.put(p.partition(), p.isr().stream().map(Node::id).collect(Collectors.toCollection(TreeSet::new)));
        }
        return isr;
    }

    /** Waits until every partition of each topic has all {@value #REPLICATION_FACTOR} replicas in sync again. */
    public void awaitFullyReplicated(String... topicNames) {
        for (String topic : topicNames) {
            await("every partition of " + topic + " has " + REPLICATION_FACTOR + " in-sync replicas", () -> {
                try {
                    return inSyncReplicas(topic).values().stream().allMatch(s -> s.size() == REPLICATION_FACTOR);
                } catch (RuntimeException notYet) {
                    return false;
                }
            });
        }
    }

    /** Waits until the controller sees exactly {@code count} registered, unfenced brokers. */
    public void awaitBrokers(int count) {
        await(count + " brokers registered", () -> {
            try (Admin client = KafkaTopics.newAdmin(runningBrokersProperties())) {
                return client.describeCluster().nodes().get(10, TimeUnit.SECONDS).size() == count;
            } catch (Exception notYet) {
                return false;
            }
        });
    }

    /** Stops every broker (SIGTERM, clean); the controller keeps running. */
    @Override
    public void stop() {
        topics.close();
        brokers.forEach(EmbeddedKafkaEngine::stop);
    }

    /** Starts every stopped broker again. */
    @Override
    public void start() {
        brokers.forEach(EmbeddedKafkaEngine::start);
        awaitBrokers(BROKERS);
    }

    /** Whether every broker runs. */
    @Override
    public boolean isRunning() {
        return brokers.stream().allMatch(EmbeddedKafkaEngine::isRunning);
    }

    @Override
    public void close() {
        topics.close();
        RuntimeException first = null;
        List<EmbeddedKafkaEngine> all = new ArrayList<>(brokers);
        all.add(controller);
        for (EmbeddedKafkaEngine node : all) {
            try {
                node.close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    private TopicDescription describe(String topic) {
        try (Admin client = KafkaTopics.newAdmin(runningBrokersProperties())) {
            return client.describeTopics(List.of(topic)).allTopicNames().get(15, TimeUnit.SECONDS).get(topic);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while describing " + topic, e);
        } catch (Exception e) {
            throw new IllegalStateException("could not describe topic " + topic + " on " + bootstrapServers(), e);
        }
    }

    /** Admin properties naming only running brokers: a dead bootstrap address would only cost retries. */
    private Map<String, Object> runningBrokersProperties() {
        String running = brokers.stream().filter(EmbeddedKafkaEngine::isRunning)
                .map(EmbeddedKafkaEngine::bootstrapServers).collect(Collectors.joining(","));
        return KafkaClientSettings.scram(running.isEmpty() ? bootstrapServers() : running, EmbeddedKafkaEngine.ADMIN,
                admin.password()).clientProperties();
    }

    private static int freePort(Set<Integer> taken) {
        while (true) {
            int port = FreePorts.pick();
            if (taken.add(port)) {
                return port;
            }
        }
    }

    private static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + AWAIT_TIMEOUT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the embedded Kafka cluster: not true after " + AWAIT_TIMEOUT.toSeconds()
                        + " s: " + what);
            }
            try {
                Thread.sleep(200); // polling cluster metadata; Kafka offers nothing to wait on
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for: " + what, e);
            }
        }
    }
}
