package dev.tokenmeter.sink.ops;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.config.ServiceLogging;
import dev.tokenmeter.db.Migrations;
import dev.tokenmeter.events.topic.Topics;
import org.apache.kafka.clients.admin.Admin;

import java.util.List;
import java.util.Map;

/**
 * The deployment's init step (docker-compose service {@code init}): creates every topic explicitly
 * with its documented partitions and policy, on a cluster that authenticates the services' own principals with
 * their ACLs ({@link KafkaAccess}; it logs in as the cluster's admin), and migrates Postgres. Idempotent; exits 0 when done.
 * Configuration: {@link #KEYS} (read with service-config's {@link EnvReader}, so blank means the default and a
 * bad value stops it naming the key), plus {@code TOPIC_PREFIX} and {@code TOPIC_PARTITIONS} (usage-events
 * {@link Topics#fromEnv}). The defaults are the billing sink's.
 */
public final class Init {

    public static final List<ConfigKey> KEYS = ConfigKey.join(KafkaClientSettings.KEYS, KafkaAccess.KEYS, List.of(
            new ConfigKey("TOPIC_REPLICATION_FACTOR", "1", "Replication factor of the created topics (3 in production)."),
            new ConfigKey("DATABASE_URL", "jdbc:postgresql://127.0.0.1:5432/tokenmeter", "JDBC URL of the database to migrate."),
            new ConfigKey("DATABASE_USER", "tokenmeter", "Postgres user."),
            ConfigKey.secret("DATABASE_PASSWORD", "", "Postgres password. Never logged.")));

    private Init() {
    }

    public static void main(String[] args) {
        ServiceLogging.check(System.getenv());
        run(System.getenv());
    }

    /** Creates the topics and migrates the database named by {@code env}; idempotent. */
    public static void run(Map<String, String> env) {
        EnvReader config = new EnvReader(env, KEYS);
        KafkaClientSettings kafka = KafkaClientSettings.read(config);
        short replication = (short) config.integer("TOPIC_REPLICATION_FACTOR", 1, Short.MAX_VALUE);
        Topics topics = Topics.fromEnv(env);
        // Read (and check) the principals before connecting: a missing password stops it at once.
        List<KafkaAccess.Principal> principals = kafka.authenticates() ? KafkaAccess.principals(config, topics) : List.of();
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            topics.createAll(admin, replication);
            System.out.println("topics ready: " + topics.all().stream().map(t -> t.name()).toList());
            if (kafka.authenticates()) {
                KafkaAccess.grant(admin, principals);
                System.out.println("kafka principals ready: " + principals);
            } else {
                System.out.println("kafka does not authenticate (KAFKA_SECURITY_PROTOCOL=" + kafka.securityProtocol()
                        + "): no principals or ACLs created");
            }
        }
        var result = Migrations.migrate(config.string("DATABASE_URL"), config.string("DATABASE_USER"),
                config.string("DATABASE_PASSWORD"));
        System.out.println("database at schema version " + result.targetSchemaVersion);
    }
}
