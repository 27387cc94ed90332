package dev.tokenmeter.testkit;

import dev.tokenmeter.config.KafkaClientSettings;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AclBinding;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A Kafka cluster for tests: a single broker unless the external backend points at something bigger.
 *
 * <p>The embedded broker is secured as a production cluster is (SASL/SCRAM-SHA-512, KRaft's StandardAuthorizer, no
 * access without an ACL): {@link #clientProperties()} and {@link #clientEnv()} connect as its admin, a super user,
 * and {@link #createPrincipal} with {@link #createAcls} make a service's own principal. The external and container
 * backends are PLAINTEXT without an authorizer ({@link #secured()} false): the same tests run there, the security
 * tests are skipped.
 */
public interface KafkaEngine {

    String bootstrapServers();

    /** How to connect as the admin (a super user where the broker is secured). */
    default KafkaClientSettings clientSettings() {
        return KafkaClientSettings.plaintext(bootstrapServers());
    }

    /** Client properties of the admin: bootstrap.servers plus security.protocol and the SASL login. */
    default Map<String, Object> clientProperties() {
        return clientSettings().clientProperties();
    }

    /** {@link #clientProperties()} with {@code more} added (a client's own settings). */
    default Map<String, Object> clientProperties(Map<String, ?> more) {
        Map<String, Object> props = new HashMap<>(clientProperties());
        props.putAll(more);
        return props;
    }

    /** The {@code KAFKA_*} environment of a service (or child JVM) connecting as the admin. */
    default Map<String, String> clientEnv() {
        return clientSettings().env();
    }

    /** {@link #clientEnv()} with {@code more} added (a service's own keys). */
    default Map<String, String> clientEnv(Map<String, String> more) {
        Map<String, String> env = new HashMap<>(clientEnv());
        env.putAll(more);
        return env;
    }

    /** The replication factor a deployment's topics get on this Kafka: 1 on a single broker, 3 on a cluster. */
    default int replicationFactor() {
        return 1;
    }

    /** Whether clients must log in and need ACLs (the embedded broker). */
    default boolean secured() {
        return clientSettings().authenticates();
    }

    /** Connection settings of another principal (made with {@link #createPrincipal}). */
    default KafkaClientSettings clientSettings(String principal, String password) {
        if (!secured()) {
            throw new UnsupportedOperationException("this Kafka (" + bootstrapServers() + ") does not authenticate clients");
        }
        return clientSettings().as(principal, password);
    }

    /** Creates (or re-keys) a SCRAM-SHA-512 user, the principal {@code User:<name>}. */
    default void createPrincipal(String name, String password) {
        withAdmin("create principal " + name, admin -> {
            admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(name,
                    new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password))).all().get(30, TimeUnit.SECONDS);
            // The controller has it; wait until the broker that authenticates clients has it too.
            awaitTrue("principal " + name, () -> {
                try {
                    return !admin.describeUserScramCredentials(List.of(name)).all().get(10, TimeUnit.SECONDS).isEmpty();
                } catch (ExecutionException e) {
                    return false;
                }
            });
        });
    }

    /** Adds these ACL bindings (idempotent) and returns once the broker enforces them. */
    default void createAcls(Collection<AclBinding> acls) {
        withAdmin("create " + acls.size() + " ACLs", admin -> {
            admin.createAcls(acls).all().get(30, TimeUnit.SECONDS);
            for (AclBinding acl : acls) {
                awaitTrue("ACL " + acl, () -> !admin.describeAcls(acl.toFilter()).values().get(10, TimeUnit.SECONDS).isEmpty());
            }
        });
    }

    /** What an admin call of the engine does. */
    interface AdminCall {
        void run(Admin admin) throws Exception;
    }

    /** A condition polled by {@link #awaitTrue}. */
    interface Check {
        boolean holds() throws Exception;
    }

    private static void awaitTrue(String what, Check check) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!check.holds()) {
            if (System.nanoTime() > deadline) {
                throw new TimeoutException(what + " not visible on the broker within 30s");
            }
            Thread.sleep(50);
        }
    }

    private void withAdmin(String what, AdminCall call) {
        try (Admin admin = Admin.create(clientProperties())) {
            call.run(admin);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted: " + what, e);
        } catch (Exception e) {
            throw new IllegalStateException("could not " + what + " on " + bootstrapServers() + ": " + e, e);
        }
    }

    /**
     * Creates the topic with these topic-level configs (idempotent if it exists with the same partitions) and
     * waits until it is usable. Without a {@code retention.ms} of their own, test topics keep their records
     * until deleted: tests write back-dated events, which a broker's default 7-day retention could delete.
     */
    void createTopic(String name, int partitions, Map<String, String> configs);

    /** {@link #createTopic(String, int, Map)} without topic-level configs. */
    default void createTopic(String name, int partitions) {
        createTopic(name, partitions, Map.of());
    }

    /** Like {@link #createTopic} with {@code cleanup.policy=compact}. */
    default void createCompactedTopic(String name, int partitions) {
        createTopic(name, partitions, Map.of("cleanup.policy", "compact"));
    }

    /** Stops the broker (fault tests); its data survives; start() brings it back on the SAME port. */
    void stop();

    void start();

    boolean isRunning();
}
