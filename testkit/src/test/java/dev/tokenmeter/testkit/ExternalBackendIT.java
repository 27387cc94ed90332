package dev.tokenmeter.testkit;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Runs only with tokenmeter.test.backend=external, against servers somebody else runs, e.g.:
 * <pre>
 * TOKENMETER_REDIS_URI=redis://127.0.0.1:6379 TOKENMETER_POSTGRES_URL=jdbc:postgresql://127.0.0.1:5432/test \
 * TOKENMETER_POSTGRES_USER=postgres ./mvnw -pl testkit -am verify -Dtokenmeter.test.backend=external \
 *   -Dit.test=ExternalBackendIT -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false
 * </pre>
 */
class ExternalBackendIT {

    @BeforeAll
    static void onlyOnTheExternalBackend() {
        assumeTrue(Backend.fromEnvironment() == Backend.EXTERNAL, "backend is not external");
    }

    @Test
    void redisSetGetOnTheExternalServer() {
        RedisEngine redis = Engines.shared().redis();
        String key = "tokenmeter-testkit:" + UUID.randomUUID();
        RedisClient client = RedisClient.create(redis.uri());
        try (StatefulRedisConnection<String, String> connection = client.connect()) {
            connection.sync().set(key, "42");
            assertThat(connection.sync().get(key)).isEqualTo("42");
            connection.sync().del(key);
        } finally {
            client.shutdown();
        }
        assertThatThrownBy(redis::stop).isInstanceOf(UnsupportedOperationException.class);
    }

    @Test
    void postgresMigratedDatabaseOnTheExternalServer() throws SQLException {
        PostgresEngine postgres = Engines.shared().postgres();
        String url = postgres.createMigratedDatabase("external-it");
        String name = url.substring(url.lastIndexOf('/') + 1).replaceAll("\\?.*", "");
        try {
            try (Connection c = DriverManager.getConnection(url, postgres.user(), postgres.password());
                 Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT count(*) FROM model_price")) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getLong(1)).isEqualTo(EmbeddedPostgresIT.SEEDED_PRICES);
            }
        } finally {
            // Leave the shared server as we found it.
            try (Connection c = DriverManager.getConnection(postgres.jdbcUrl(adminDatabase()), postgres.user(),
                    postgres.password()); Statement s = c.createStatement()) {
                s.execute("DROP DATABASE \"" + name + "\"");
            }
        }
        assertThatThrownBy(postgres::stop).isInstanceOf(UnsupportedOperationException.class);
    }

    private static String adminDatabase() {
        String url = System.getProperty("tokenmeter.postgres.url", System.getenv("TOKENMETER_POSTGRES_URL"));
        return url.substring(url.lastIndexOf('/') + 1).replaceAll("\\?.*", "");
    }
}
