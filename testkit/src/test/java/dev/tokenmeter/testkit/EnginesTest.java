package dev.tokenmeter.testkit;

import dev.tokenmeter.testkit.postgres.ExternalPostgresEngine;
import dev.tokenmeter.testkit.redis.ExternalRedisEngine;
import org.junit.jupiter.api.Test;
import org.testcontainers.DockerClientFactory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Backend selection and configuration errors; no engine is started here. */
class EnginesTest {

    private static boolean unset(String property, String env) {
        return System.getProperty(property) == null && System.getenv(env) == null;
    }

    @Test
    void externalBackendNamesTheMissingRedisSetting() {
        assumeTrue(unset("tokenmeter.redis.uri", "TOKENMETER_REDIS_URI"), "Redis URI is configured here");
        try (Engines engines = Engines.create(Backend.EXTERNAL)) {
            assertThatThrownBy(engines::redis)
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("tokenmeter.redis.uri")
                    .hasMessageContaining("TOKENMETER_REDIS_URI");
        }
    }

    @Test
    void externalBackendNamesTheMissingPostgresAndKafkaSettings() {
        assumeTrue(unset("tokenmeter.postgres.url", "TOKENMETER_POSTGRES_URL"), "Postgres URL is configured here");
        assumeTrue(unset("tokenmeter.kafka.bootstrap", "TOKENMETER_KAFKA_BOOTSTRAP"), "Kafka is configured here");
        try (Engines engines = Engines.create(Backend.EXTERNAL)) {
            assertThatThrownBy(engines::postgres).hasMessageContaining("tokenmeter.postgres.url")
                    .hasMessageContaining("TOKENMETER_POSTGRES_URL");
            assertThatThrownBy(engines::kafka).hasMessageContaining("tokenmeter.kafka.bootstrap")
                    .hasMessageContaining("TOKENMETER_KAFKA_BOOTSTRAP");
        }
    }

    @Test
    void containersBackendWithoutDockerSaysWhatIsMissing() {
        assumeFalse(DockerClientFactory.instance().isDockerAvailable(), "a Docker engine is available here");
        try (Engines engines = Engines.create(Backend.CONTAINERS)) {
            assertThatThrownBy(engines::redis)
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("containers backend needs a Docker engine");
        }
    }

    @Test
    void externalPostgresUrlKeepsHostPortAndParametersForEveryDatabase() {
        ExternalPostgresEngine postgres = new ExternalPostgresEngine(
                "jdbc:postgresql://db.local:6543/admin?sslmode=disable", "k", "u", "p");

        assertThat(postgres.host()).isEqualTo("db.local");
        assertThat(postgres.port()).isEqualTo(6543);
        assertThat(postgres.jdbcUrl("ledger-abc")).isEqualTo("jdbc:postgresql://db.local:6543/ledger-abc?sslmode=disable");
        assertThat(new ExternalPostgresEngine("jdbc:postgresql://127.0.0.1/test", "k", "u", "").port()).isEqualTo(5432);
    }

    @Test
    void externalUrlsThatCannotWorkAreRejectedNamingTheKey() {
        assertThatThrownBy(() -> new ExternalPostgresEngine("postgres://x/y", "tokenmeter.postgres.url", "u", "p"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("tokenmeter.postgres.url");
        assertThatThrownBy(() -> new ExternalPostgresEngine("jdbc:postgresql://host:5432", "tokenmeter.postgres.url", "u", "p"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("names no database");
        assertThatThrownBy(() -> new ExternalRedisEngine("localhost:6379", "tokenmeter.redis.uri"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("tokenmeter.redis.uri");
    }

    @Test
    void externalRedisUriDefaultsThePort() {
        ExternalRedisEngine redis = new ExternalRedisEngine("redis://127.0.0.1", "k");
        assertThat(redis.host()).isEqualTo("127.0.0.1");
        assertThat(redis.port()).isEqualTo(6379);
        assertThatThrownBy(redis::stop).isInstanceOf(UnsupportedOperationException.class);
    }
}
