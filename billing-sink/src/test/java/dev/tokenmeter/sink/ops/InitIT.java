package dev.tokenmeter.sink.ops;

import dev.tokenmeter.events.topic.Topics;
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

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The deployment's init step (docker-compose service {@code init}) on a real broker and Postgres. */
@ExtendWith(EnginesExtension.class)
class InitIT {

    @Test
    void createsEveryTopicAndMigratesTheDatabaseAndARerunChangesNothing(KafkaEngine kafka, PostgresEngine postgres) throws Exception {
        String prefix = Names.unique("init") + ".";
        String url = postgres.createDatabase("init");
        Map<String, String> env = kafka.clientEnv(Map.of("TOPIC_PREFIX", prefix,
                "TOPIC_PARTITIONS", "3",
                "TOPIC_REPLICATION_FACTOR", " ", // blank: the default (1)
                "DATABASE_URL", url,
                "DATABASE_USER", postgres.user(),
                "DATABASE_PASSWORD", postgres.password()));

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
    }

    @Test
    void aBadSettingStopsItNamingTheKey() {
        assertThatThrownBy(() -> Init.run(Map.of("TOPIC_REPLICATION_FACTOR", "three")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("TOPIC_REPLICATION_FACTOR must be a whole number from 1 to 32767, got 'three'");
    }
}
