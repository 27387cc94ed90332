package dev.tokenmeter.events.topic;

import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

import java.util.ArrayList;
import java.util.List;

/**
 * The Kafka ACLs of each service's principal, in one place: the deployment's init step grants them and the tests
 * prove a principal can do what its service does and nothing more (docs/adr/0062-kafka-principals-and-acls.md).
 * Allow-only bindings; a broker with {@code allow.everyone.if.no.acl.found=false} refuses everything else.
 * READ and WRITE imply DESCRIBE, so a client can fetch the metadata of what it may use.
 * <ul>
 *   <li>edge: WRITE usage-events, usage-alerts, user-limits (idempotent producers, no transactions); READ usage-alerts
 *       (the dashboard's recent alerts, read by assigned partitions: no consumer group), READ the totals and rollups
 *       topics (the billing sink's lag on the dashboard: offsets, and whether a commit marker or a record is left)
 *       and DESCRIBE the aggregator's dead letters (their count) and its consumer group (its committed offsets: the
 *       aggregator's lag); ADR 0082;</li>
 *   <li>aggregator: READ usage-events and user-limits; WRITE the totals, late-events, alerts and dead-letter
 *       topics; its consumer group (the application id); transactional ids and internal topics (changelogs,
 *       repartition) prefixed with the application id;</li>
 *   <li>billing sink: READ usage-events and the totals topics; its consumer groups (prefixed with its group id);
 *       WRITE usage-alerts (upstream reconciliation differences, ADR 0086).</li>
 *   <li>alert-notifier: READ usage-alerts; its consumer group.</li>
 *   <li>analysts: READ every public topic (events, totals, late events, alerts, user limits, dead letters) and
 *       consumer groups with their own prefix; no WRITE anywhere, nothing of the aggregator's internal topics.</li>
 * </ul>
 */
public final class ServiceAcls {

    private ServiceAcls() {
    }

    /** The principal Kafka gives a SCRAM user. */
    public static String principal(String username) {
        return "User:" + username;
    }

    public static List<AclBinding> edge(String username, Topics topics, String aggregatorApplicationId) {
        List<AclBinding> acls = new ArrayList<>();
        for (TopicSpec<?, ?> t : List.of(topics.usageEvents(), topics.alerts(), topics.userLimits())) {
            acls.add(allow(username, ResourceType.TOPIC, t.name(), PatternType.LITERAL, AclOperation.WRITE));
        }
        acls.add(allow(username, ResourceType.TOPIC, topics.alerts().name(), PatternType.LITERAL, AclOperation.READ));
        // READ, not only DESCRIBE: a transactional topic's last offset is a commit marker, and only a fetch tells a
        // marker from a record the sink has not written yet (the lag at rest is then 0, not 1 per partition).
        for (TopicSpec<?, ?> t : List.of(topics.hourlyTotals(), topics.monthlyTotals(), topics.finalTotals(), topics.rollups())) {
            acls.add(allow(username, ResourceType.TOPIC, t.name(), PatternType.LITERAL, AclOperation.READ));
        }
        acls.add(allow(username, ResourceType.TOPIC, topics.deadLetter().name(), PatternType.LITERAL, AclOperation.DESCRIBE));
        // The dashboard's aggregator lag: the offsets its group committed (DESCRIBE only: it can neither join nor commit).
        acls.add(allow(username, ResourceType.GROUP, aggregatorApplicationId, PatternType.LITERAL, AclOperation.DESCRIBE));
        return acls;
    }

    public static List<AclBinding> aggregator(String username, Topics topics, String applicationId) {
        List<AclBinding> acls = new ArrayList<>();
        for (TopicSpec<?, ?> t : List.of(topics.usageEvents(), topics.userLimits())) {
            acls.add(allow(username, ResourceType.TOPIC, t.name(), PatternType.LITERAL, AclOperation.READ));
        }
        for (TopicSpec<?, ?> t : List.of(topics.hourlyTotals(), topics.monthlyTotals(), topics.finalTotals(),
                topics.lateEvents(), topics.alerts(), topics.deadLetter(), topics.rollups())) {
            acls.add(allow(username, ResourceType.TOPIC, t.name(), PatternType.LITERAL, AclOperation.WRITE));
        }
        acls.add(allow(username, ResourceType.GROUP, applicationId, PatternType.LITERAL, AclOperation.READ));
        acls.add(allow(username, ResourceType.TRANSACTIONAL_ID, applicationId, PatternType.PREFIXED, AclOperation.WRITE));
        // Kafka Streams' own topics: <application id>-<store>-changelog, -repartition (created, read, written, purged).
        acls.add(allow(username, ResourceType.TOPIC, applicationId, PatternType.PREFIXED, AclOperation.ALL));
        return acls;
    }

    public static List<AclBinding> billingSink(String username, Topics topics, String groupId) {
        List<AclBinding> acls = new ArrayList<>();
        for (TopicSpec<?, ?> t : List.of(topics.usageEvents(), topics.hourlyTotals(), topics.monthlyTotals(),
                topics.finalTotals(), topics.rollups())) {
            acls.add(allow(username, ResourceType.TOPIC, t.name(), PatternType.LITERAL, AclOperation.READ));
        }
        // The upstream reconciler's upstream_difference alerts (ADR 0086): idempotent producer, no transactions.
        acls.add(allow(username, ResourceType.TOPIC, topics.alerts().name(), PatternType.LITERAL, AclOperation.WRITE));
        // One consumer group per loop: <group id>-ledger, <group id>-totals.
        acls.add(allow(username, ResourceType.GROUP, groupId, PatternType.PREFIXED, AclOperation.READ));
        return acls;
    }

    public static List<AclBinding> notifier(String username, Topics topics, String groupId) {
        return List.of(
                allow(username, ResourceType.TOPIC, topics.alerts().name(), PatternType.LITERAL, AclOperation.READ),
                allow(username, ResourceType.GROUP, groupId, PatternType.LITERAL, AclOperation.READ));
    }

    /** Read-only access for analysts (and {@code TailTopic}): every public topic, groups prefixed {@code groupPrefix}. */
    public static List<AclBinding> analyst(String username, Topics topics, String groupPrefix) {
        List<AclBinding> acls = new ArrayList<>();
        for (TopicSpec<?, ?> t : List.of(topics.usageEvents(), topics.hourlyTotals(), topics.monthlyTotals(),
                topics.finalTotals(), topics.lateEvents(), topics.alerts(), topics.userLimits(), topics.deadLetter(),
                topics.rollups())) {
            acls.add(allow(username, ResourceType.TOPIC, t.name(), PatternType.LITERAL, AclOperation.READ));
        }
        acls.add(allow(username, ResourceType.GROUP, groupPrefix, PatternType.PREFIXED, AclOperation.READ));
        return acls;
    }

    private static AclBinding allow(String username, ResourceType type, String name, PatternType pattern, AclOperation op) {
        return new AclBinding(new ResourcePattern(type, name, pattern),
                new AccessControlEntry(principal(username), "*", op, AclPermissionType.ALLOW));
    }
}
