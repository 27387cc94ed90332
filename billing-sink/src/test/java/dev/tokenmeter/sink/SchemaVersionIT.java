package dev.tokenmeter.sink;

import dev.tokenmeter.db.Migrations;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.PostgresEngine;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.ds.PGSimpleDataSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Issue 13: services no longer migrate at start-up (only the init step does, as the owner); they check the schema
 * version with Migrations.requireCurrent, whose EXPECTED_VERSION must be the newest migration shipped.
 */
@ExtendWith(EnginesExtension.class)
class SchemaVersionIT {

    private final PostgresEngine postgres;

    SchemaVersionIT(PostgresEngine postgres) {
        this.postgres = postgres;
    }

    @Test
    void expectedVersionIsTheNewestMigrationShipped() {
        String url = postgres.createMigratedDatabase("version");
        String newest = Flyway.configure().dataSource(url, postgres.user(), postgres.password())
                .locations(Migrations.LOCATION).load().info().current().getVersion().getVersion();
        assertThat(Migrations.EXPECTED_VERSION).as("bump Migrations.EXPECTED_VERSION with every new migration").isEqualTo(newest);
        assertThat(Migrations.requireCurrent(dataSource(url))).isEqualTo(newest);
    }

    @Test
    void anOlderOrUnmigratedSchemaIsRefusedNamingFoundAndExpected() {
        String empty = postgres.createDatabase("unmigrated");
        assertThatThrownBy(() -> Migrations.requireCurrent(dataSource(empty)))
                .isInstanceOf(Migrations.SchemaVersionException.class)
                .hasMessageContaining("not migrated").hasMessageContaining("expects version " + Migrations.EXPECTED_VERSION)
                .hasMessageContaining("init step");

        String older = postgres.createDatabase("older");
        Flyway.configure().dataSource(older, postgres.user(), postgres.password()).locations(Migrations.LOCATION)
                .target("11").load().migrate();
        assertThatThrownBy(() -> Migrations.requireCurrent(dataSource(older)))
                .isInstanceOf(Migrations.SchemaVersionException.class)
                .hasMessageContaining("at version 11,").hasMessageContaining("expects version " + Migrations.EXPECTED_VERSION);
    }

    /**
     * Migration numbers are handed out to parallel work (V17 and V18 of issue 17 were written at the same time), so a
     * deployment may be at a newer version when an older-numbered migration arrives: the init step applies it instead
     * of refusing to start. The probe V17_5 stands for any migration numbered below the newest one applied.
     */
    @Test
    void aMigrationNumberedBelowTheNewestAppliedIsAppliedWhenItArrives() throws Exception {
        String url = postgres.createDatabase("late");
        Migrations.migrate(url, postgres.user(), postgres.password());
        String[] withLateArrival = {Migrations.LOCATION, "classpath:db/late-migration"};

        assertThatThrownBy(() -> Flyway.configure().dataSource(url, postgres.user(), postgres.password())
                .locations(withLateArrival).load().migrate())
                .as("Flyway's default refuses it: the setting is what makes it work")
                .hasMessageContaining("17.5");
        Migrations.configuration().dataSource(url, postgres.user(), postgres.password())
                .locations(withLateArrival).load().migrate();

        try (var c = java.sql.DriverManager.getConnection(url, postgres.user(), postgres.password());
             var rs = c.createStatement().executeQuery(
                     "SELECT success FROM flyway_schema_history WHERE version = '17.5'")) {
            assertThat(rs.next()).as("the late migration is recorded").isTrue();
            assertThat(rs.getBoolean(1)).isTrue();
        }
        assertThat(Migrations.requireCurrent(dataSource(url))).isEqualTo(Migrations.EXPECTED_VERSION);
    }

    private PGSimpleDataSource dataSource(String url) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl(url);
        ds.setUser(postgres.user());
        ds.setPassword(postgres.password());
        return ds;
    }
}
