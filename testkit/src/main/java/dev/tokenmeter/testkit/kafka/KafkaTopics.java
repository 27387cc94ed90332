package dev.tokenmeter.testkit.kafka;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Topic creation shared by every Kafka backend: idempotent, and done only when every partition has a leader. */
final class KafkaTopics implements AutoCloseable {

    static final Duration TOPIC_TIMEOUT = Duration.ofSeconds(30);
    private static final long RETRY_PAUSE_MS = 100;

    private final Map<String, Object> clientProperties;
    private final String bootstrapServers;
    private Admin admin;

    /** Topics made through an admin client with these properties (bootstrap servers and login). */
    KafkaTopics(Map<String, Object> clientProperties) {
        this.clientProperties = Map.copyOf(clientProperties);
        this.bootstrapServers = String.valueOf(clientProperties.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG));
    }

    static Admin newAdmin(Map<String, Object> clientProperties) {
        Properties props = new Properties();
        props.putAll(clientProperties);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "tokenmeter-testkit-admin");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");
        return Admin.create(props);
    }

    private synchronized Admin admin() {
        if (admin == null) {
            admin = newAdmin(clientProperties);
        }
        return admin;
    }

    void create(String name, int partitions, Map<String, String> configs) {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("a topic name is required");
        }
        if (partitions < 1) {
            throw new IllegalArgumentException("topic " + name + ": partitions must be >= 1, got " + partitions);
        }
        long deadline = System.nanoTime() + TOPIC_TIMEOUT.toNanos();
        // No replication factor: the cluster's default (1 on the single-broker engines).
        Map<String, String> topicConfigs = new HashMap<>(configs);
        // Records stay until the topic is deleted: tests write back-dated events (months old), which the
        // broker's default retention (7 days, by record time) would delete under the test's feet.
        topicConfigs.putIfAbsent("retention.ms", "-1");
        NewTopic topic = new NewTopic(name, Optional.of(partitions), Optional.empty()).configs(topicConfigs);
        while (true) {
            try {
                admin().createTopics(List.of(topic)).all().get(remainingMs(deadline, name), TimeUnit.MILLISECONDS);
                break;
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof TopicExistsException) {
                    requirePartitions(name, partitions, deadline);
                    break;
                }
                // A broker that has just started may not be registered (unfenced) yet.
                if (!(cause instanceof InvalidReplicationFactorException || cause instanceof RetriableException)) {
                    throw new IllegalStateException("could not create topic " + name + " on " + bootstrapServers, cause);
                }
                pause(deadline, name, cause);
            } catch (TimeoutException e) {
                throw timeout(name, e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while creating topic " + name, e);
            }
        }
        awaitLeaders(name, partitions, deadline);
    }

    private void requirePartitions(String name, int partitions, long deadline) {
        TopicDescription description = describe(name, deadline);
        if (description != null && description.partitions().size() != partitions) {
            throw new IllegalStateException("topic " + name + " already exists with "
                    + description.partitions().size() + " partitions, not the requested " + partitions);
        }
    }

    private void awaitLeaders(String name, int partitions, long deadline) {
        while (true) {
            TopicDescription description = describe(name, deadline);
            if (description != null && description.partitions().size() == partitions
                    && description.partitions().stream().map(TopicPartitionInfo::leader).allMatch(l -> l != null && !l.isEmpty())) {
                return;
            }
            pause(deadline, name, null);
        }
    }

    /** The description, or null while the topic is not yet visible. */
    private TopicDescription describe(String name, long deadline) {
        try {
            return admin().describeTopics(List.of(name)).allTopicNames()
                    .get(remainingMs(deadline, name), TimeUnit.MILLISECONDS).get(name);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException || e.getCause() instanceof RetriableException) {
                return null;
            }
            throw new IllegalStateException("could not describe topic " + name + " on " + bootstrapServers, e.getCause());
        } catch (TimeoutException e) {
            throw timeout(name, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while describing topic " + name, e);
        }
    }

    private long remainingMs(long deadline, String name) {
        long remaining = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        if (remaining <= 0) {
            throw timeout(name, null);
        }
        return remaining;
    }

    private void pause(long deadline, String name, Throwable lastError) {
        if (deadline - System.nanoTime() <= 0) {
            throw timeout(name, lastError);
        }
        try {
            Thread.sleep(RETRY_PAUSE_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topic " + name, e);
        }
    }

    private IllegalStateException timeout(String name, Throwable cause) {
        return new IllegalStateException("topic " + name + " was not usable on " + bootstrapServers + " within "
                + TOPIC_TIMEOUT.toSeconds() + "s (is the broker running?)", cause);
    }

    @Override
    public synchronized void close() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
            admin = null;
        }
    }
}
