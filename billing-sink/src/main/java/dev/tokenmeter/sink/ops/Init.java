package dev.tokenmeter.sink.ops;

import dev.tokenmeter.db.Migrations;
import dev.tokenmeter.events.topic.Topics;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

import java.util.Map;

/**
 * The deployment's init step (docker-compose service {@code init}): creates every topic explicitly
 * with its documented partitions and policy, and migrates Postgres. Idempotent; exits 0 when done.
 *
 * <table>
 *   <caption>Configuration (environment)</caption>
 *   <tr><td>KAFKA_BOOTSTRAP_SERVERS</td><td>localhost:9092</td><td>Kafka bootstrap servers</td></tr>
 *   <tr><td>TOPIC_PREFIX / TOPIC_PARTITIONS</td><td>"" / 6</td><td>see usage-events README</td></tr>
 *   <tr><td>TOPIC_REPLICATION_FACTOR</td><td>1</td><td>replication factor of created topics (3 in production)</td></tr>
 *   <tr><td>DATABASE_URL / DATABASE_USER / DATABASE_PASSWORD</td><td>jdbc:postgresql://localhost:5432/tokenmeter, tokenmeter, tokenmeter</td><td>Postgres to migrate</td></tr>
 * </table>
 */
public final class Init {

    private Init() {
    }

    public static void main(String[] args) {
        Map<String, String> env = System.getenv();
        String bootstrap = env.getOrDefault("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092");
        short replication = parseShort(env, "TOPIC_REPLICATION_FACTOR", "1");
        Topics topics = Topics.fromEnv(env);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            topics.createAll(admin, replication);
        }
        System.out.println("topics ready: " + topics.all().stream().map(t -> t.name()).toList());
        var result = Migrations.migrate(
                env.getOrDefault("DATABASE_URL", "jdbc:postgresql://localhost:5432/tokenmeter"),
                env.getOrDefault("DATABASE_USER", "tokenmeter"),
                env.getOrDefault("DATABASE_PASSWORD", "tokenmeter"));
        System.out.println("database at schema version " + result.targetSchemaVersion);
    }

    private static short parseShort(Map<String, String> env, String key, String def) {
        String value = env.getOrDefault(key, def);
        try {
            return Short.parseShort(value.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + " must be a small whole number, got '" + value + "'", e);
        }
    }
}
