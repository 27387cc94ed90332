package dev.tokenmeter.testkit.postgres;

import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.Names;
import org.flywaydb.core.Flyway;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.function.UnaryOperator;

/**
 * Creating per-test databases on any Postgres backend, with or without the project's Flyway migrations.
 *
 * <p>On a server the testkit owns (embedded, containers) the migrations run once, into a template
 * database, and every migrated database is a copy of it: about 20 ms instead of 250–900 ms for Flyway
 * per database. The copy carries flyway_schema_history, so an application that runs Flyway at start-up
 * sees an up-to-date schema. On an external server Flyway runs per database instead, so nothing but the
 * test's own databases is left behind.
 *
 * <p>This is the tests' one way to a migrated database, not a second deployment path: the deployment (and the
 * local stack, which runs it) migrates only through billing-sink's {@code ops.Init} and billing-db's
 * {@code Migrations}. The testkit runs Flyway itself over the same files because billing-db depends on it (jOOQ
 * code generation at build time), so it cannot call {@code Migrations}.
 */
final class Databases {

    /** Where module {@code schemas} ships the migrations. */
    static final String MIGRATIONS = "classpath:db/migration";
    /** SQLSTATE 55006: the template still has a session (a just-closed connection whose backend has not exited). */
    private static final String OBJECT_IN_USE = "55006";
    private static final int TEMPLATE_BUSY_RETRIES = 50;

    private final String adminJdbcUrl;
    private final String user;
    private final String password;
    private final UnaryOperator<String> jdbcUrlOf;
    private final boolean useTemplate;
    private String template;

    /**
     * @param adminJdbcUrl a database the user may connect to and run CREATE DATABASE from
     * @param jdbcUrlOf    the JDBC URL of a database by name
     * @param useTemplate  migrate once into a template database and copy it (only where the testkit owns the server)
     */
    Databases(String adminJdbcUrl, String user, String password, UnaryOperator<String> jdbcUrlOf, boolean useTemplate) {
        this.adminJdbcUrl = adminJdbcUrl;
        this.user = user;
        this.password = password;
        this.jdbcUrlOf = jdbcUrlOf;
        this.useTemplate = useTemplate;
    }

    String create(String prefix) {
        String name = Names.unique(prefix);
        // Names.unique guarantees [a-z0-9_-], so quoting is all the escaping needed.
        execute("CREATE DATABASE \"" + name + "\"", "could not create database " + name);
        return jdbcUrlOf.apply(name);
    }

    String createMigrated(String prefix) {
        if (!useTemplate) {
            String url = create(prefix);
            migrate(url);
            return url;
        }
        String source = template();
        String name = Names.unique(prefix);
        String sql = "CREATE DATABASE \"" + name + "\" TEMPLATE \"" + source + "\"";
        for (int attempt = 1; ; attempt++) {
            try (Connection connection = DriverManager.getConnection(adminJdbcUrl, user, password);
                 Statement statement = connection.createStatement()) {
                statement.execute(sql);
                return jdbcUrlOf.apply(name);
            } catch (SQLException e) {
                if (!OBJECT_IN_USE.equals(e.getSQLState()) || attempt >= TEMPLATE_BUSY_RETRIES) {
                    throw new IllegalStateException("could not create database " + name + " from template " + source
                            + " via " + adminJdbcUrl + " as " + user, e);
                }
                pause();
            }
        }
    }

    /**
     * A LOGIN role that is a member of the group role {@code groupRole} (one the migrations create, e.g.
     * tokenmeter_edge), as the deployment's init step makes one per service: tests connect as it, so a grant
     * the service lacks fails in its tests. Created on first use (roles are server-wide), password reset each time.
     */
    DatabaseLogin login(String groupRole) {
        if (!groupRole.matches("[a-z][a-z0-9_]{0,40}")) {
            throw new IllegalArgumentException("not a role name: '" + groupRole + "'");
        }
        if (useTemplate) {
            template(); // the migrations create the group roles
        }
        String name = groupRole + "_login";
        String secret = "pw-" + name + "-" + Integer.toHexString(System.identityHashCode(this));
        execute("DO $$ BEGIN"
                + " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + name + "') THEN"
                + " CREATE ROLE \"" + name + "\" LOGIN IN ROLE \"" + groupRole + "\"; END IF;"
                + " EXCEPTION WHEN duplicate_object THEN NULL;" // another JVM created it meanwhile
                + " END $$", "could not create the login role " + name + " (does the group role " + groupRole + " exist?)");
        execute("ALTER ROLE \"" + name + "\" LOGIN PASSWORD '" + secret + "'", "could not set the password of " + name);
        return new DatabaseLogin(name, secret);
    }

    private synchronized String template() {
        if (template == null) {
            String url = create("tokenmeter_template");
            migrate(url);
            String name = url.substring(url.lastIndexOf('/') + 1).replaceAll("\\?.*", "");
            // Nobody connects to it again by accident; copying needs it free of sessions.
            execute("ALTER DATABASE \"" + name + "\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
                    "could not mark " + name + " as a template");
            template = name;
        }
        return template;
    }

    private void migrate(String url) {
        try {
            Flyway.configure()
                    .dataSource(url, user, password)
                    .locations(MIGRATIONS)
                    .failOnMissingLocations(true)
                    .outOfOrder(true) // as billing-db's Migrations: numbers are handed out to parallel work
                    .load()
                    .migrate();
        } catch (RuntimeException e) {
            throw new IllegalStateException("could not migrate " + url + " from " + MIGRATIONS
                    + " (is module schemas on the class path?)", e);
        }
    }

    private void execute(String sql, String failure) {
        try (Connection connection = DriverManager.getConnection(adminJdbcUrl, user, password);
             Statement statement = connection.createStatement()) {
            statement.execute(sql);
        } catch (SQLException e) {
            throw new IllegalStateException(failure + " via " + adminJdbcUrl + " as " + user, e);
        }
    }

    private static void pause() {
        try {
            Thread.sleep(20);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating a database", e);
        }
    }
}
