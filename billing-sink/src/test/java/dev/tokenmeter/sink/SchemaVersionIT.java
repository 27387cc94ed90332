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

    private PGSimpleDataSource dataSource(String url) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl(url);
        ds.setUser(postgres.user());
        ds.setPassword(postgres.password());
        return ds;
    }
}
