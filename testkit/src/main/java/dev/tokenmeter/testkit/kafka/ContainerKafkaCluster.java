package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.testkit.EngineVersions;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.support.DockerRequirement;
import dev.tokenmeter.testkit.support.FreePorts;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.utility.DockerImageName;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * The cluster of {@link EmbeddedKafkaCluster} (ADR 0084) in containers of the apache/kafka image of
 * {@link EngineVersions}, where a Docker engine exists: one KRaft controller (node 0) and three brokers (nodes 1-3) on a
 * network of their own, every topic RF 3 and {@code min.insync.replicas} 2 by the brokers' defaults, PLAINTEXT (as the
 * other container engines). Each broker's client listener is bound to the same port on the host as in the container
 * and advertised as {@code localhost:<port>}, so {@link #kill} (SIGKILL through Docker) and {@link #restart} keep its
 * address and data. Compiled and documented; not run on the project's machines (no Docker there).
 */
public final class ContainerKafkaCluster implements KafkaEngine, AutoCloseable {

    public static final String IMAGE = EngineVersions.KAFKA_IMAGE;
    private static final int CONTROLLER_PORT = 9093;
    private static final int INTERNAL_PORT = 9094;
    private static final Duration START_TIMEOUT = Duration.ofMinutes(3);

    private final Network network;
    private final GenericContainer<?> controller;
    private final List<GenericContainer<?>> brokers;
    private final List<Integer> hostPorts;
    private final KafkaTopics topics;

    private ContainerKafkaCluster(Network network, GenericContainer<?> controller, List<GenericContainer<?>> brokers,
                                  List<Integer> hostPorts) {
        this.network = network;
        this.controller = controller;
        this.brokers = List.copyOf(brokers);
        this.hostPorts = List.copyOf(hostPorts);
        this.topics = new KafkaTopics(clientProperties());
    }

    public static ContainerKafkaCluster launch() {
        DockerRequirement.check("a Kafka cluster (" + IMAGE + ")");
        String clusterId = Uuid.randomUuid().toString();
        Network network = Network.newNetwork();
        String voters = "0@controller:" + CONTROLLER_PORT;
        Map<String, String> common = new HashMap<>(Map.of(
                "CLUSTER_ID", clusterId,
                "KAFKA_CONTROLLER_QUORUM_VOTERS", voters,
                "KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,HOST:PLAINTEXT",
                "KAFKA_DEFAULT_REPLICATION_FACTOR", Integer.toString(EmbeddedKafkaCluster.REPLICATION_FACTOR),
                "KAFKA_MIN_INSYNC_REPLICAS", Integer.toString(EmbeddedKafkaCluster.MIN_INSYNC_REPLICAS),
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", Integer.toString(EmbeddedKafkaCluster.REPLICATION_FACTOR),
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", Integer.toString(EmbeddedKafkaCluster.REPLICATION_FACTOR),
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", Integer.toString(EmbeddedKafkaCluster.MIN_INSYNC_REPLICAS),
                "KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false"));
        common.put("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
        common.put("KAFKA_BROKER_HEARTBEAT_INTERVAL_MS", "1000");
        common.put("KAFKA_BROKER_SESSION_TIMEOUT_MS", "6000");

        GenericContainer<?> controller = new GenericContainer<>(DockerImageName.parse(IMAGE))
                .withNetwork(network).withNetworkAliases("controller")
                .withEnv(common)
                .withEnv("KAFKA_NODE_ID", "0")
                .withEnv("KAFKA_PROCESS_ROLES", "controller")
                .withEnv("KAFKA_LISTENERS", "CONTROLLER://:" + CONTROLLER_PORT)
                .waitingFor(Wait.forLogMessage(".*Kafka Server started.*\\n", 1).withStartupTimeout(START_TIMEOUT));
        List<GenericContainer<?>> brokers = new ArrayList<>();
        List<Integer> ports = new ArrayList<>();
        for (int id = 1; id <= EmbeddedKafkaCluster.BROKERS; id++) {
            int hostPort = FreePorts.pick();
            ports.add(hostPort);
            GenericContainer<?> broker = new GenericContainer<>(DockerImageName.parse(IMAGE))
                    .withNetwork(network).withNetworkAliases("broker" + id)
                    .withEnv(common)
                    .withEnv("KAFKA_NODE_ID", Integer.toString(id))
                    .withEnv("KAFKA_PROCESS_ROLES", "broker")
                    .withEnv("KAFKA_LISTENERS", "INTERNAL://:" + INTERNAL_PORT + ",HOST://:" + hostPort)
                    .withEnv("KAFKA_ADVERTISED_LISTENERS", "INTERNAL://broker" + id + ":" + INTERNAL_PORT
                            + ",HOST://localhost:" + hostPort)
                    .withEnv("KAFKA_INTER_BROKER_LISTENER_NAME", "INTERNAL")
                    .withExposedPorts(hostPort)
                    .waitingFor(Wait.forLogMessage(".*Kafka Server started.*\\n", 1).withStartupTimeout(START_TIMEOUT));
            // the same port inside and out: the advertised address stays right across a restart
            broker.setPortBindings(List.of(hostPort + ":" + hostPort));
            brokers.add(broker);
        }
        ContainerKafkaCluster cluster = new ContainerKafkaCluster(network, controller, brokers, ports);
        try {
            controller.start();
            brokers.parallelStream().forEach(GenericContainer::start);
        } catch (RuntimeException e) {
            cluster.close();
            throw e;
        }
        return cluster;
    }

    @Override
    public String bootstrapServers() {
        return hostPorts.stream().map(p -> "localhost:" + p).collect(Collectors.joining(","));
    }

    @Override
    public int replicationFactor() {
        return EmbeddedKafkaCluster.REPLICATION_FACTOR;
    }

    @Override
    public void createTopic(String name, int partitions, Map<String, String> configs) {
        topics.create(name, partitions, configs);
    }

    /** SIGKILL broker {@code nodeId} (1-3) through Docker; the container and its data stay. */
    public void kill(int nodeId) {
        GenericContainer<?> broker = broker(nodeId);
        broker.getDockerClient().killContainerCmd(broker.getContainerId()).withSignal("SIGKILL").exec();
    }

    /** Starts a killed broker's container again (same host port, same data). */
    public void restart(int nodeId) {
        GenericContainer<?> broker = broker(nodeId);
        broker.getDockerClient().startContainerCmd(broker.getContainerId()).exec();
    }

    /** The node id of the broker leading each partition of {@code topic}, by partition (-1: none). */
    public Map<Integer, Integer> leaders(String topic) {
        try (Admin admin = KafkaTopics.newAdmin(clientProperties())) {
            Map<Integer, Integer> leaders = new TreeMap<>();
            for (TopicPartitionInfo p : admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS)
                    .get(topic).partitions()) {
                leaders.put(p.partition(), p.leader() == null || p.leader().isEmpty() ? -1 : p.leader().id());
            }
            return leaders;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while describing " + topic, e);
        } catch (Exception e) {
            throw new IllegalStateException("could not describe topic " + topic + " on " + bootstrapServers(), e);
        }
    }

    /** Refused, as on every container engine: use {@link #kill} and {@link #restart} for one broker. */
    @Override
    public void stop() {
        throw new UnsupportedOperationException("the containers backend does not stop the whole cluster; kill(nodeId)"
                + " and restart(nodeId) one broker");
    }

    @Override
    public void start() {
        stop();
    }

    @Override
    public boolean isRunning() {
        return brokers.stream().allMatch(GenericContainer::isRunning);
    }

    @Override
    public void close() {
        topics.close();
        brokers.forEach(GenericContainer::stop);
        controller.stop();
        network.close();
    }

    private GenericContainer<?> broker(int nodeId) {
        if (nodeId < 1 || nodeId > brokers.size()) {
            throw new IllegalArgumentException("no broker with node id " + nodeId + " (1-" + brokers.size() + ")");
        }
        return brokers.get(nodeId - 1);
    }
}
