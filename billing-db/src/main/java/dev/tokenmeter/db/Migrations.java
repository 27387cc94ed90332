package dev.tokenmeter.db;

import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.MigrationVersion;
import org.flywaydb.core.api.configuration.FluentConfiguration;
import org.flywaydb.core.api.output.MigrateResult;

import javax.sql.DataSource;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * The Flyway migrations shipped by the {@code schemas} module ({@code classpath:db/migration}). Only the deployment's
 * init step (billing-sink {@code ops.Init}, which the local stack runs too) migrates, as the schema's owner; the
 * testkit's per-test databases are copies of a template it migrates from the same files. The services log in as
 * their own roles (ADR 0060), which may not change the schema, and check at start-up that it is at least
 * {@link #EXPECTED_VERSION}.
 */
public final class Migrations {

    public static final String LOCATION = "classpath:db/migration";
    /** The newest migration of this build (SchemaVersionIT holds it to the newest migration shipped). */
    public static final String EXPECTED_VERSION = "36";

    private Migrations() {
    }

    /**
     * Migrates the database to the newest version, as the schema's owner (the init step, tests' templates).
     * {@code outOfOrder}: migration numbers are assigned to parallel work up front and may land out of order (V19
     * before V17, V18 after V19); a database already at V19 then still applies V17 when it arrives, instead of
     * refusing it. Migrations only add, so their order between parallel changes does not matter (SchemaVersionIT).
     */
    public static MigrateResult migrate(DataSource dataSource) {
        return configuration().dataSource(dataSource).load().migrate();
    }

    public static MigrateResult migrate(String jdbcUrl, String user, String password) {
        return configuration().dataSource(jdbcUrl, user, password).load().migrate();
    }

    /** How the deployment runs Flyway ({@link #LOCATION}, out of order), without a data source yet. */
    public static FluentConfiguration configuration() {
        return Flyway.configure().locations(LOCATION).outOfOrder(true);
    }

    /**
     * Fails unless the database's schema is at {@link #EXPECTED_VERSION} or newer (migrations only add; a service
     * of the previous build keeps working while the init step of the next one has run). Reads Flyway's history,
     * never changes anything.
     *
     * @throws SchemaVersionException naming the version found and the one expected
     * @throws IllegalStateException when the database cannot be read (not reachable, no grant)
     */
    public static String requireCurrent(DataSource dataSource) {
        String found;
        try (Connection connection = dataSource.getConnection();
             Statement statement = connection.createStatement();
             ResultSet history = statement.executeQuery(
                     "SELECT version FROM flyway_schema_history WHERE success AND version IS NOT NULL")) {
            MigrationVersion newest = null;
            while (history.next()) {
                MigrationVersion v = MigrationVersion.fromVersion(history.getString(1));
                newest = newest == null || v.isNewerThan(newest.getVersion()) ? v : newest;
            }
            found = newest == null ? null : newest.getVersion();
        } catch (SQLException e) {
            if ("42P01".equals(e.getSQLState())) { // undefined_table: never migrated
                found = null;
            } else {
                throw new IllegalStateException("could not read the database's schema version (flyway_schema_history): "
                        + e.getMessage(), e);
            }
        }
        if (found == null || MigrationVersion.fromVersion(EXPECTED_VERSION).isNewerThan(found)) {
            throw new SchemaVersionException(found);
        }
        return found;
    }

    /**
     * {@link #requireCurrent} once the database answers: waits for it (backoff doubling from 500 ms up to
     * {@code backoffMax}) rather than crash-looping while it starts; a schema older than this build fails at once.
     */
    public static String awaitCurrent(DataSource dataSource, java.time.Duration backoffMax) {
        org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(Migrations.class);
        long backoff = 500;
        while (true) {
            try {
                String version = requireCurrent(dataSource);
                log.info("database schema at version {} (this build needs {})", version, EXPECTED_VERSION);
                return version;
            } catch (SchemaVersionException e) {
                throw e;
            } catch (RuntimeException e) {
                log.warn("database not ready ({}); retrying in {} ms", e.getClass().getSimpleName(), backoff);
                try {
                    Thread.sleep(backoff);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for the database", ie);
                }
                backoff = Math.min(backoffMax.toMillis(), backoff * 2);
            }
        }
    }

    /** The database's schema is older than this build expects (or was never migrated). */
    public static final class SchemaVersionException extends IllegalStateException {
        SchemaVersionException(String found) {
            super("the database's schema is at version " + (found == null ? "<none: not migrated>" : found)
                    + ", this build expects version " + EXPECTED_VERSION
                    + ": run the deployment's init step (billing-sink ops.Init, docker compose service init) to migrate it");
        }
    }
}
