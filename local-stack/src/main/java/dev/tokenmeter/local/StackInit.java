package dev.tokenmeter.local;

import dev.tokenmeter.sink.ops.Init;
import dev.tokenmeter.testkit.Engines;

import java.io.PrintStream;
import java.security.SecureRandom;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;

/**
 * Provisions a stack's topics, Kafka principals with their ACLs, schema and database logins by running the
 * deployment's init step ({@link Init}) against the engines, with the environment docker-compose gives it: the
 * local stack makes nothing its own way. What Init made (each service's logins) is here for the services' env.
 *
 * <p>The database logins get names of their own per stack (roles are server-wide, and stacks of several tests share
 * one Postgres); every password is random.
 */
final class StackInit {

    private static final SecureRandom RANDOM = new SecureRandom();

    /** A login: user and password. */
    record Login(String user, String password) {
        @Override
        public String toString() {
            return "Login[" + user + ", password=<redacted>]";
        }
    }

    private final Engines engines;
    private final String prefix;
    private final Login edgeDatabase;
    private final Login sinkDatabase;
    private final Login notifierDatabase;
    private final Map<String, Login> kafka = new HashMap<>();

    private StackInit(Engines engines, String prefix) {
        this.engines = engines;
        this.prefix = prefix;
        String id = HexFormat.of().formatHex(randomBytes(4));
        this.edgeDatabase = new Login("local_" + id + "_edge_svc", randomToken());
        this.sinkDatabase = new Login("local_" + id + "_sink_svc", randomToken());
        this.notifierDatabase = new Login("local_" + id + "_notifier_svc", randomToken());
        if (engines.kafka().secured()) {
            for (String service : new String[] {"edge", "aggregator", "billing-sink", "alert-notifier", "analyst"}) {
                kafka.put(service, new Login(prefix + service, randomToken()));
            }
        }
    }

    /** Runs {@link Init} on the database at {@code jdbcUrl} (created, not migrated) and the engines' Kafka. */
    static StackInit run(Engines engines, String jdbcUrl, String prefix) {
        StackInit init = new StackInit(engines, prefix);
        Init.run(init.initEnv(jdbcUrl), new PrintStream(PrintStream.nullOutputStream()));
        return init;
    }

    /** What docker-compose gives the init service, for this stack. */
    private Map<String, String> initEnv(String jdbcUrl) {
        Map<String, String> env = new HashMap<>(engines.kafka().clientEnv());
        env.put("TOPIC_PREFIX", prefix);
        // RF 3 on a cluster (EmbeddedKafkaCluster), as in production; 1 on a single broker.
        env.put("TOPIC_REPLICATION_FACTOR", Integer.toString(engines.kafka().replicationFactor()));
        env.put("DATABASE_URL", jdbcUrl);
        env.put("DATABASE_USER", engines.postgres().user());
        env.put("DATABASE_PASSWORD", engines.postgres().password());
        env.put("EDGE_DATABASE_USER", edgeDatabase.user());
        env.put("EDGE_DATABASE_PASSWORD", edgeDatabase.password());
        env.put("SINK_DATABASE_USER", sinkDatabase.user());
        env.put("SINK_DATABASE_PASSWORD", sinkDatabase.password());
        env.put("NOTIFIER_DATABASE_USER", notifierDatabase.user());
        env.put("NOTIFIER_DATABASE_PASSWORD", notifierDatabase.password());
        env.put("NOTIFIER_GROUP_ID", notifierGroupId());
        env.put("AGGREGATOR_APPLICATION_ID", aggregatorApplicationId());
        env.put("SINK_GROUP_ID", sinkGroupId());
        env.put("ANALYST_GROUP_PREFIX", analystGroupPrefix());
        putKafkaLogin(env, "EDGE", "edge");
        putKafkaLogin(env, "AGGREGATOR", "aggregator");
        putKafkaLogin(env, "SINK", "billing-sink");
        putKafkaLogin(env, "NOTIFIER", "alert-notifier");
        putKafkaLogin(env, "ANALYST", "analyst");
        return env;
    }

    private void putKafkaLogin(Map<String, String> env, String role, String service) {
        Login login = kafka.get(service);
        if (login != null) {
            env.put(role + "_KAFKA_USERNAME", login.user());
            env.put(role + "_KAFKA_PASSWORD", login.password());
        }
    }

    String aggregatorApplicationId() {
        return prefix + "tokenmeter-aggregator";
    }

    String sinkGroupId() {
        return prefix + "tokenmeter-billing-sink";
    }

    String notifierGroupId() {
        return prefix + "tokenmeter-alert-notifier";
    }

    String analystGroupPrefix() {
        return prefix + "analyst";
    }

    Login edgeDatabase() {
        return edgeDatabase;
    }

    Login sinkDatabase() {
        return sinkDatabase;
    }

    Login notifierDatabase() {
        return notifierDatabase;
    }

    /**
     * The KAFKA_* settings with which {@code service} (edge, aggregator, billing-sink, alert-notifier, analyst) logs in as its own
     * principal; the admin's where the broker does not authenticate (there are no principals then).
     */
    Map<String, String> kafkaEnv(String service) {
        Login login = kafka.get(service);
        return login == null ? engines.kafka().clientEnv() : engines.kafka().clientSettings(login.user(), login.password()).env();
    }

    static String randomToken() {
        return java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(randomBytes(18));
    }

    private static byte[] randomBytes(int n) {
        byte[] bytes = new byte[n];
        RANDOM.nextBytes(bytes);
        return bytes;
    }
}
