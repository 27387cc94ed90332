package dev.tokenmeter.sink.ops;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.config.ServiceLogging;
import dev.tokenmeter.db.Migrations;
import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.events.topic.Topics;
import org.apache.kafka.clients.admin.Admin;

import java.io.PrintStream;
import java.util.List;
import java.util.Map;

/**
 * The deployment's init step (docker-compose service {@code init}), and the one place that provisions: the local
 * stack runs it too (local-stack {@code StackInit}), so topics, ACLs, migrations and logins are made one way. It
 * creates every topic explicitly with its documented partitions and policy, on a cluster that authenticates the services' own principals with
 * their ACLs ({@link KafkaAccess}; it logs in as the cluster's admin), migrates Postgres as the schema's owner and
 * creates the services' own database logins ({@link ServiceLogins}, ADR 0060). Idempotent; exits 0 when done.
 * Configuration: {@link #KEYS} (read with service-config's {@link EnvReader}, so blank means the default and a
 * bad value stops it naming the key), plus {@code TOPIC_PREFIX} and {@code TOPIC_PARTITIONS} (usage-events
 * {@link Topics#fromEnv}). The defaults are the billing sink's.
 */
public final class Init {

    public static final List<ConfigKey> KEYS = ConfigKey.join(KafkaClientSettings.KEYS, KafkaAccess.KEYS, List.of(
            new ConfigKey("TOPIC_REPLICATION_FACTOR", "1", "Replication factor of the created topics (3 in production)."),
            new ConfigKey("DATABASE_URL", "jdbc:postgresql://127.0.0.1:5432/tokenmeter", "JDBC URL of the database to migrate."),
            new ConfigKey("DATABASE_USER", "tokenmeter", "Postgres user that owns the schema and runs the migrations (only here)."),
            ConfigKey.secret("DATABASE_PASSWORD", "", "Password of DATABASE_USER. Never logged."),
            new ConfigKey("EDGE_DATABASE_USER", "tokenmeter_edge_svc", "Login role the edge connects as (member of tokenmeter_edge)."),
            ConfigKey.secret("EDGE_DATABASE_PASSWORD", "", "Its password; blank: no edge login is created or changed. Never logged."),
            new ConfigKey("SINK_DATABASE_USER", "tokenmeter_sink_svc", "Login role the billing sink connects as (member of tokenmeter_sink)."),
            ConfigKey.secret("SINK_DATABASE_PASSWORD", "", "Its password; blank: no sink login is created or changed. Never logged."),
            new ConfigKey("NOTIFIER_DATABASE_USER", "tokenmeter_notifier_svc", "Login role the alert-notifier connects as (member of tokenmeter_notifier)."),
            ConfigKey.secret("NOTIFIER_DATABASE_PASSWORD", "", "Its password; blank: no notifier login is created or changed. Never logged."),
            new ConfigKey("FINANCE_DATABASE_USER", "tokenmeter_finance_ro", "Read-only login for finance (member of tokenmeter_finance)."),
            ConfigKey.secret("FINANCE_DATABASE_PASSWORD", "", "Its password; blank: no finance login is created or changed. Never logged.")));

    private Init() {
    }

    public static void main(String[] args) {
        ServiceLogging.check(System.getenv());
        run(System.getenv());
    }

    /**
     * Creates the topics, migrates the database named by {@code env} as its owner and creates or updates the
     * services' login roles (those with a password set); idempotent.
     */
    public static void run(Map<String, String> env) {
        run(env, System.out);
    }

    /** {@link #run(Map)}, telling what it made on {@code out}. */
    public static void run(Map<String, String> env, PrintStream out) {
        EnvReader config = new EnvReader(env, KEYS);
        KafkaClientSettings kafka = KafkaClientSettings.read(config);
        short replication = (short) config.integer("TOPIC_REPLICATION_FACTOR", 1, Short.MAX_VALUE);
        Topics topics = Topics.fromEnv(env);
        // Read (and check) the principals before connecting: a missing password stops it at once.
        List<KafkaAccess.Principal> principals = kafka.authenticates() ? KafkaAccess.principals(config, topics) : List.of();
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            topics.createAll(admin, replication);
            out.println("topics ready: " + topics.all().stream().map(t -> t.name()).toList());
            if (kafka.authenticates()) {
                KafkaAccess.grant(admin, principals);
                out.println("kafka principals ready: " + principals);
            } else {
                out.println("kafka does not authenticate (KAFKA_SECURITY_PROTOCOL=" + kafka.securityProtocol()
                        + "): no principals or ACLs created");
            }
        }
        String url = config.string("DATABASE_URL");
        String owner = config.string("DATABASE_USER");
        String ownerPassword = config.string("DATABASE_PASSWORD");
        var result = Migrations.migrate(url, owner, ownerPassword);
        out.println("database at schema version " + result.targetSchemaVersion);
        for (String[] login : new String[][] {{"EDGE", ServiceLogins.EDGE}, {"SINK", ServiceLogins.SINK},
                {"NOTIFIER", ServiceLogins.NOTIFIER}, {"FINANCE", ServiceLogins.FINANCE}}) {
            String user = config.string(login[0] + "_DATABASE_USER");
            String password = config.string(login[0] + "_DATABASE_PASSWORD");
            if (!password.isEmpty()) {
                ServiceLogins.ensure(url, owner, ownerPassword, user, password, login[1]);
                out.println("database login " + user + " is a member of " + login[1]);
            }
        }
    }
}
