package dev.tokenmeter.testkit;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.server.common.MetadataVersion;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 13, one set of engine versions: the engines the tests run report the versions {@link EngineVersions} names
 * (local-stack's DeploymentConfigTest holds docker-compose's images to the same).
 */
@ExtendWith(EnginesExtension.class)
class EngineVersionsIT {

    @Test
    void postgresIsTheMajorVersionNamed(PostgresEngine postgres) throws Exception {
        try (Connection connection = DriverManager.getConnection(postgres.jdbcUrl("postgres"), postgres.user(), postgres.password());
             Statement statement = connection.createStatement();
             ResultSet version = statement.executeQuery("SELECT version(), current_setting('server_version')")) {
            version.next();
            assertThat(version.getString(1)).startsWith("PostgreSQL ");
            assertThat(EngineVersions.major(version.getString(2))).as(version.getString(1))
                    .isEqualTo(EngineVersions.POSTGRES_MAJOR);
        }
    }

    @Test
    void redisIsTheMajorVersionNamed(RedisEngine redis) {
        RedisClient client = RedisClient.create(redis.uri());
        try (StatefulRedisConnection<String, String> connection = client.connect()) {
            String info = connection.sync().info("server");
            String version = info.lines().filter(line -> line.startsWith("redis_version:")).findFirst()
                    .orElseThrow(() -> new AssertionError("INFO server has no redis_version: " + info))
                    .substring("redis_version:".length()).strip();
            assertThat(EngineVersions.major(version)).as("redis_version " + version).isEqualTo(EngineVersions.REDIS_MAJOR);
        } finally {
            client.shutdown();
        }
    }

    /** The broker's finalized metadata.version is the release of EngineVersions.KAFKA (4.3.1 -> 4.3). */
    @Test
    void kafkaIsTheReleaseNamed(KafkaEngine kafka) throws Exception {
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            FeatureMetadata features = admin.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS);
            short level = features.finalizedFeatures().get(MetadataVersion.FEATURE_NAME).maxVersionLevel();
            String release = MetadataVersion.fromFeatureLevel(level).shortVersion();
            assertThat(EngineVersions.KAFKA).as("the broker's metadata.version " + release).startsWith(release + ".");
        }
        assertThat(org.apache.kafka.common.utils.AppInfoParser.getVersion()).as("the Kafka jars the broker runs from")
                .isEqualTo(EngineVersions.KAFKA);
    }
}
