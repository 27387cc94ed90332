package dev.tokenmeter.testkit;

import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The Postgres engine of the configured backend; resolved in a static lifecycle method on purpose. */
@ExtendWith(EnginesExtension.class)
class EmbeddedPostgresIT {

    private static PostgresEngine postgres;

    @BeforeAll
    static void engine(PostgresEngine engine) {
        postgres = engine;
    }

    /**
     * Price rows the migrations seed: V3 12 list prices; V27 the two free moderation models, V27_1 gpt-image-1, V27_2
     * tts-1 and tts-1-hd, V34 gpt-4o-transcribe, gpt-4o-mini-transcribe and whisper-1, V35 a batch row for each of
     * the 12 V3 models. ExternalBackendIT counts the same.
     */
    static final long SEEDED_PRICES = 12 + 2 + 1 + 2 + 3 + 12;

    @Test
    void migratedDatabaseHasTheSchemaAndTheSeededPrices() throws SQLException {
        String url = postgres.createMigratedDatabase("migrated");

        assertThat(url).matches("jdbc:postgresql://.+/migrated-[a-z0-9]{8}.*");
        assertThat(tables(url)).contains("usage_ledger", "usage_ledger_event_id", "model_price", "account",
                "plan", "usage_total_hourly", "usage_total_monthly");
        assertThat(queryLong(url, "SELECT count(*) FROM model_price")).isEqualTo(SEEDED_PRICES);
        assertThat(queryLong(url, "SELECT input_nano_usd_per_token FROM model_price WHERE model = 'tts-1-hd'"))
                .isEqualTo(30_000);
        assertThat(queryLong(url, "SELECT input_nano_usd_per_token FROM model_price WHERE model = 'gpt-4o' AND service_tier = 'standard'"))
                .isEqualTo(2500);
        // V35: every standard row keeps divisor 1; the batch rows are half price, per 2 tokens where a half is fractional.
        assertThat(queryLong(url, "SELECT count(*) FROM model_price WHERE service_tier <> 'batch' AND price_divisor <> 1")).isZero();
        assertThat(queryLong(url, "SELECT count(*) FROM model_price WHERE service_tier = 'batch' AND price_divisor = 2")).isEqualTo(6);
        assertThat(queryLong(url, "SELECT count(*) FROM model_price b JOIN model_price s ON s.model = b.model"
                + " AND s.service_tier = 'standard' AND s.effective_from = b.effective_from WHERE b.service_tier = 'batch'"
                + " AND b.input_nano_usd_per_token * 2 = s.input_nano_usd_per_token * b.price_divisor"
                + " AND coalesce(b.cached_input_nano_usd_per_token * 2, -1) = coalesce(s.cached_input_nano_usd_per_token * b.price_divisor, -1)"
                + " AND coalesce(b.output_nano_usd_per_token * 2, -1) = coalesce(s.output_nano_usd_per_token * b.price_divisor, -1)"))
                .as("every batch row is exactly half its standard row").isEqualTo(12);
    }

    /** Migrated databases are copies of one template; a copy must be complete and independent. */
    @Test
    void migratedDatabasesAreUpToDateAndIndependentOfEachOther() throws SQLException {
        String first = postgres.createMigratedDatabase("copy");
        String second = postgres.createMigratedDatabase("copy");

        for (String url : List.of(first, second)) {
            assertThat(Flyway.configure().dataSource(url, postgres.user(), postgres.password())
                    .locations("classpath:db/migration").load().info().pending())
                    .as("pending migrations in " + url).isEmpty();
        }
        execute(first, "INSERT INTO plan (plan_id, display_name, monthly_credit_nano_usd, requests_per_minute, "
                + "tokens_per_minute) VALUES ('only-in-first', 'x', 0, 1, 1)");
        assertThat(queryLong(first, "SELECT count(*) FROM plan WHERE plan_id = 'only-in-first'")).isEqualTo(1);
        assertThat(queryLong(second, "SELECT count(*) FROM plan WHERE plan_id = 'only-in-first'")).isZero();
    }

    @Test
    void eachCallGetsItsOwnDatabase() throws SQLException {
        String first = postgres.createDatabase("plain");
        String second = postgres.createDatabase("plain");

        assertThat(first).isNotEqualTo(second);
        assertThat(tables(first)).isEmpty();
        execute(first, "CREATE TABLE only_in_first (id int)");
        assertThat(tables(second)).isEmpty();
    }

    @Test
    void stopAndStartKeepTheData() throws SQLException {
        String url = postgres.createDatabase("restart");
        execute(url, "CREATE TABLE survivor (id int PRIMARY KEY)");
        execute(url, "INSERT INTO survivor VALUES (7)");

        postgres.stop();
        assertThat(postgres.isRunning()).isFalse();
        assertThatThrownBy(() -> queryLong(url, "SELECT 1")).isInstanceOf(SQLException.class);

        postgres.start();
        assertThat(postgres.isRunning()).isTrue();
        assertThat(queryLong(url, "SELECT id FROM survivor")).isEqualTo(7);
    }

    private static Connection connect(String url) throws SQLException {
        return DriverManager.getConnection(url, postgres.user(), postgres.password());
    }

    private static void execute(String url, String sql) throws SQLException {
        try (Connection c = connect(url); Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    private static long queryLong(String url, String sql) throws SQLException {
        try (Connection c = connect(url); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            assertThat(rs.next()).as("a row from " + sql).isTrue();
            return rs.getLong(1);
        }
    }

    private static List<String> tables(String url) throws SQLException {
        List<String> tables = new ArrayList<>();
        try (Connection c = connect(url); Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SELECT table_name FROM information_schema.tables "
                     + "WHERE table_schema = 'public' AND table_type IN ('BASE TABLE', 'VIEW')")) {
            while (rs.next()) {
                tables.add(rs.getString(1));
            }
        }
        return tables;
    }
}
