package dev.tokenmeter.sink.ops;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.events.topic.ServiceAcls;
import dev.tokenmeter.events.topic.Topics;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AclBinding;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Each service's own Kafka principal: a SCRAM-SHA-512 user with exactly the ACLs of {@link ServiceAcls}. Run by
 * the deployment's {@link Init} (as the cluster's admin) and by the local stack; idempotent (a rerun re-keys the
 * users with the given passwords and re-adds the same ACLs). docs/adr/0062-kafka-principals-and-acls.md.
 */
public final class KafkaAccess {

    public static final List<ConfigKey> KEYS = List.of(
            new ConfigKey("EDGE_KAFKA_USERNAME", "edge", "Kafka principal of the edge (its KAFKA_USERNAME)."),
            ConfigKey.secret("EDGE_KAFKA_PASSWORD", "", "Its password (the edge's KAFKA_PASSWORD); required with SASL. Never logged."),
            new ConfigKey("AGGREGATOR_KAFKA_USERNAME", "aggregator", "Kafka principal of the aggregator."),
            ConfigKey.secret("AGGREGATOR_KAFKA_PASSWORD", "", "Its password; required with SASL. Never logged."),
            new ConfigKey("AGGREGATOR_APPLICATION_ID", "tokenmeter-aggregator", "The aggregator's APPLICATION_ID: its group, and the prefix of its transactional ids and internal topics."),
            new ConfigKey("SINK_KAFKA_USERNAME", "billing-sink", "Kafka principal of the billing sink."),
            ConfigKey.secret("SINK_KAFKA_PASSWORD", "", "Its password; required with SASL. Never logged."),
            new ConfigKey("SINK_GROUP_ID", "tokenmeter-billing-sink", "The sink's GROUP_ID, prefix of its consumer groups."),
            new ConfigKey("NOTIFIER_KAFKA_USERNAME", "alert-notifier", "Kafka principal of the alert-notifier."),
            ConfigKey.secret("NOTIFIER_KAFKA_PASSWORD", "", "Its password; empty = no notifier principal (deployments without the notifier). Never logged."),
            new ConfigKey("NOTIFIER_GROUP_ID", "tokenmeter-alert-notifier", "The alert-notifier's GROUP_ID (its consumer group)."),
            new ConfigKey("ANALYST_KAFKA_USERNAME", "analyst", "Read-only Kafka principal for analysts (every public topic, groups prefixed ANALYST_GROUP_PREFIX)."),
            ConfigKey.secret("ANALYST_KAFKA_PASSWORD", "", "Its password; empty = no analyst principal. Never logged."),
            new ConfigKey("ANALYST_GROUP_PREFIX", "analyst", "Consumer groups the analyst principal may use start with this (TailTopic's do)."));

    private static final int SCRAM_ITERATIONS = 8192;
    private static final long TIMEOUT_SECONDS = 30;

    /** One service's login and what it may do. */
    public record Principal(String username, String password, List<AclBinding> acls) {
        @Override
        public String toString() {
            return "Principal[" + username + ", " + acls.size() + " ACLs, password=<redacted>]";
        }
    }

    private KafkaAccess() {
    }

    /**
     * The edge's, the aggregator's and the sink's principals, the alert-notifier's when NOTIFIER_KAFKA_PASSWORD is set
     * and the analysts' read-only one when ANALYST_KAFKA_PASSWORD is set, from the {@link #KEYS} ({@code r} must list
     * them).
     */
    public static List<Principal> principals(EnvReader r, Topics topics) {
        List<Principal> services = List.of(
                new Principal(r.string("EDGE_KAFKA_USERNAME"), required(r, "EDGE_KAFKA_PASSWORD"),
                        ServiceAcls.edge(r.string("EDGE_KAFKA_USERNAME"), topics, r.string("AGGREGATOR_APPLICATION_ID"))),
                new Principal(r.string("AGGREGATOR_KAFKA_USERNAME"), required(r, "AGGREGATOR_KAFKA_PASSWORD"),
                        ServiceAcls.aggregator(r.string("AGGREGATOR_KAFKA_USERNAME"), topics, r.string("AGGREGATOR_APPLICATION_ID"))),
                new Principal(r.string("SINK_KAFKA_USERNAME"), required(r, "SINK_KAFKA_PASSWORD"),
                        ServiceAcls.billingSink(r.string("SINK_KAFKA_USERNAME"), topics, r.string("SINK_GROUP_ID"))));
        List<Principal> all = new ArrayList<>(services);
        if (!r.string("NOTIFIER_KAFKA_PASSWORD").isEmpty()) {
            all.add(new Principal(r.string("NOTIFIER_KAFKA_USERNAME"), r.string("NOTIFIER_KAFKA_PASSWORD"),
                    ServiceAcls.notifier(r.string("NOTIFIER_KAFKA_USERNAME"), topics, r.string("NOTIFIER_GROUP_ID"))));
        }
        if (r.string("ANALYST_KAFKA_PASSWORD").isEmpty()) {
            return List.copyOf(all);
        }
        all.add(new Principal(r.string("ANALYST_KAFKA_USERNAME"), r.string("ANALYST_KAFKA_PASSWORD"),
                ServiceAcls.analyst(r.string("ANALYST_KAFKA_USERNAME"), topics, r.string("ANALYST_GROUP_PREFIX"))));
        return List.copyOf(all);
    }

    /** Creates (or re-keys) the users and adds their ACLs; returns once the brokers enforce them. */
    public static void grant(Admin admin, List<Principal> principals) {
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        List<AclBinding> acls = new ArrayList<>();
        for (Principal p : principals) {
            users.add(new UserScramCredentialUpsertion(p.username(),
                    new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), p.password()));
            acls.addAll(p.acls());
        }
        try {
            admin.alterUserScramCredentials(users).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            admin.createAcls(acls).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            // The controller has them; a service started right after must not meet a broker that does not yet.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
            for (AclBinding acl : acls) {
                while (admin.describeAcls(acl.toFilter()).values().get(TIMEOUT_SECONDS, TimeUnit.SECONDS).isEmpty()) {
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException("ACL not visible on the broker within " + TIMEOUT_SECONDS + "s: " + acl);
                    }
                    Thread.sleep(50);
                }
            }
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("could not create the services' Kafka principals and ACLs: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating Kafka principals", e);
        }
    }

    private static String required(EnvReader r, String key) {
        String v = r.string(key);
        if (v.isEmpty()) {
            throw new IllegalArgumentException(key + " is required: Kafka authenticates clients (KAFKA_SECURITY_PROTOCOL=SASL_*)"
                    + " and each service logs in as its own principal");
        }
        return v;
    }
}
