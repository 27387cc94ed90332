package dev.tokenmeter.sink.ops;

import dev.tokenmeter.events.topic.Topics;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ExecutionException;
import java.util.HashMap;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import dev.tokenmeter.events.topic.ServiceAcls;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.PostgresEngine;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.MigrationInfoService;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The deployment's init step (docker-compose service {@code init}) on a real broker and Postgres. */
@ExtendWith(EnginesExtension.class)
class InitIT {

    @Test
    void createsEveryTopicAndMigratesTheDatabaseAndARerunChangesNothing(KafkaEngine kafka, PostgresEngine postgres) throws Exception {
        String prefix = Names.unique("init") + ".";
        String url = postgres.createDatabase("init");
        String edgeUser = Names.unique("edge_svc").replace('-', '_');
        String sinkUser = Names.unique("sink_svc").replace('-', '_');
        String financeUser = Names.unique("finance_ro").replace('-', '_');
        Map<String, String> env = new HashMap<>(kafka.clientEnv(Map.of("TOPIC_PREFIX", prefix,
                "TOPIC_PARTITIONS", "3",
                "TOPIC_REPLICATION_FACTOR", " ", // blank: the default (1)
                "DATABASE_URL", url,
                "DATABASE_USER", postgres.user(),
                "DATABASE_PASSWORD", postgres.password())));
        // On a broker that authenticates, init also creates the services' principals (eachPrincipalGetsOnlyItsAcls).
        env.putAll(Map.of("EDGE_KAFKA_USERNAME", prefix + "edge", "EDGE_KAFKA_PASSWORD", "e",
                "AGGREGATOR_KAFKA_USERNAME", prefix + "aggregator", "AGGREGATOR_KAFKA_PASSWORD", "a",
                "SINK_KAFKA_USERNAME", prefix + "sink", "SINK_KAFKA_PASSWORD", "s"));
        // ...and the services' own database logins (issue 13, ADR 0060).
        env.putAll(Map.of("EDGE_DATABASE_USER", edgeUser, "EDGE_DATABASE_PASSWORD", "edge-pw",
                "SINK_DATABASE_USER", sinkUser, "SINK_DATABASE_PASSWORD", "sink-pw",
                "FINANCE_DATABASE_USER", financeUser, "FINANCE_DATABASE_PASSWORD", "finance-pw"));

        Init.run(env);
        Init.run(env);

        Topics topics = Topics.withPrefix(prefix, 3);
        List<String> names = topics.all().stream().map(t -> t.name()).toList();
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            Map<String, TopicDescription> described = admin.describeTopics(names).allTopicNames().get();
            assertThat(described).hasSize(names.size());
            assertThat(described.values()).allSatisfy(d -> assertThat(d.partitions()).hasSize(3));
            ConfigResource limits = new ConfigResource(ConfigResource.Type.TOPIC, topics.userLimits().name());
            Config config = admin.describeConfigs(List.of(limits)).all().get().get(limits);
            assertThat(config.get("cleanup.policy").value()).isEqualTo("compact");
        }
        MigrationInfoService migrations = Flyway.configure().dataSource(url, postgres.user(), postgres.password())
                .locations("classpath:db/migration").load().info();
        assertThat(migrations.applied()).as("applied migrations").isNotEmpty()
                .allSatisfy(m -> assertThat(m.getState().isFailed()).isFalse());
        assertThat(migrations.pending()).as("pending migrations").isEmpty();

        // Issue 13: the services' own logins and finance's read-only one, each in its group role and nothing more.
        for (String[] login : new String[][] {{edgeUser, "edge-pw", "tokenmeter_edge"}, {sinkUser, "sink-pw", "tokenmeter_sink"},
                {financeUser, "finance-pw", "tokenmeter_finance"}}) {
            try (Connection c = DriverManager.getConnection(url, login[0], login[1]);
                 Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("SELECT pg_has_role(current_user, '" + login[2] + "', 'member'),"
                         + " (SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user)")) {
                r.next();
                assertThat(r.getBoolean(1)).as(login[0] + " is a member of " + login[2]).isTrue();
                assertThat(r.getBoolean(2)).as(login[0] + " has no superuser/createrole/createdb").isFalse();
            }
        }
    }

    @Test
    void aBadSettingStopsItNamingTheKey() {
        assertThatThrownBy(() -> Init.run(Map.of("TOPIC_REPLICATION_FACTOR", "three")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("TOPIC_REPLICATION_FACTOR must be a whole number from 1 to 32767, got 'three'");
    }

    /** Issue 13: Init creates each service's principal with exactly its ACLs (and a rerun adds nothing). */
    @Test
    void eachPrincipalGetsOnlyItsAcls(KafkaEngine kafka, PostgresEngine postgres) throws Exception {
        assumeTrue(kafka.secured(), "this Kafka backend does not authenticate clients");
        String prefix = Names.unique("initacl") + ".";
        Map<String, String> own = new HashMap<>(Map.of(
                "TOPIC_PREFIX", prefix, "TOPIC_PARTITIONS", "1",
                "DATABASE_URL", postgres.createDatabase("initacl"),
                "DATABASE_USER", postgres.user(), "DATABASE_PASSWORD", postgres.password()));
        own.putAll(Map.of(
                "EDGE_KAFKA_USERNAME", prefix + "edge", "EDGE_KAFKA_PASSWORD", "edge-pw",
                "AGGREGATOR_KAFKA_USERNAME", prefix + "aggregator", "AGGREGATOR_KAFKA_PASSWORD", "aggregator-pw",
                "AGGREGATOR_APPLICATION_ID", prefix + "aggregator-app",
                "SINK_KAFKA_USERNAME", prefix + "sink", "SINK_KAFKA_PASSWORD", "sink-pw",
                "SINK_GROUP_ID", prefix + "sink-group"));
        Map<String, String> env = kafka.clientEnv(own);

        Init.run(env);
        Init.run(env);

        Topics topics = Topics.withPrefix(prefix, 1);
        Map<String, List<AclBinding>> expected = Map.of(
                prefix + "edge", ServiceAcls.edge(prefix + "edge", topics, prefix + "aggregator-app"),
                prefix + "aggregator", ServiceAcls.aggregator(prefix + "aggregator", topics, prefix + "aggregator-app"),
                prefix + "sink", ServiceAcls.billingSink(prefix + "sink", topics, prefix + "sink-group"));
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            for (Map.Entry<String, List<AclBinding>> e : expected.entrySet()) {
                AclBindingFilter byPrincipal = new AclBindingFilter(ResourcePatternFilter.ANY, new AccessControlEntryFilter(
                        ServiceAcls.principal(e.getKey()), null, AclOperation.ANY, AclPermissionType.ANY));
                assertThat(admin.describeAcls(byPrincipal).values().get(30, TimeUnit.SECONDS))
                        .as("ACLs of %s", e.getKey()).containsExactlyInAnyOrderElementsOf(e.getValue());
            }
        }
        // What the grants mean on the broker: the edge writes usage events and no totals; the aggregator, which
        // only reads usage events, cannot write them; the sink writes nothing.
        assertThat(sendFails(kafka.clientSettings(prefix + "edge", "edge-pw"), topics.usageEvents().name())).isNull();
        assertThat(sendFails(kafka.clientSettings(prefix + "edge", "edge-pw"), topics.hourlyTotals().name()))
                .isInstanceOf(TopicAuthorizationException.class);
        assertThat(sendFails(kafka.clientSettings(prefix + "aggregator", "aggregator-pw"), topics.usageEvents().name()))
                .isInstanceOf(AuthorizationException.class);
        assertThat(sendFails(kafka.clientSettings(prefix + "sink", "sink-pw"), topics.finalTotals().name()))
                .isInstanceOf(AuthorizationException.class);
    }

    @Test
    void aSecuredKafkaNeedsEachServicePassword() {
        assertThatThrownBy(() -> Init.run(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1",
                "KAFKA_USERNAME", "admin", "KAFKA_PASSWORD", "pw", "KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("EDGE_KAFKA_PASSWORD is required");
    }

    /** The cause of a failed send, or null when the record was written. */
    private static Throwable sendFails(KafkaClientSettings principal, String topic) throws InterruptedException {
        Map<String, Object> props = new HashMap<>(principal.clientProperties());
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10_000);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 20_000);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            producer.send(new ProducerRecord<>(topic, "k".getBytes(), "v".getBytes())).get(30, TimeUnit.SECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (org.apache.kafka.common.KafkaException e) {
            // A principal with WRITE nowhere (the sink) is refused its idempotent producer id too; then send() itself
            // throws ('in an error state') with the authorization error at the root (as c332710 in KafkaSecurityIT).
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            return root;
        } catch (java.util.concurrent.TimeoutException e) {
            return e;
        }
    }
}
