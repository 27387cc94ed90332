package dev.tokenmeter.testkit.postgres;

import dev.tokenmeter.testkit.Names;
import org.flywaydb.core.Flyway;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.function.UnaryOperator;

/** Creating per-test databases on any Postgres backend, with or without the project's Flyway migrations. */
final class Databases {

    /** Where module {@code schemas} ships the migrations. */
    static final String MIGRATIONS = "classpath:db/migration";

    private final String adminJdbcUrl;
    private final String user;
    private final String password;
    private final UnaryOperator<String> jdbcUrlOf;

    /**
     * @param adminJdbcUrl a database the user may connect to and run CREATE DATABASE from
     * @param jdbcUrlOf    the JDBC URL of a database by name
     */
    Databases(String adminJdbcUrl, String user, String password, UnaryOperator<String> jdbcUrlOf) {
        this.adminJdbcUrl = adminJdbcUrl;
        this.user = user;
        this.password = password;
        this.jdbcUrlOf = jdbcUrlOf;
    }

    String create(String prefix) {
        String name = Names.unique(prefix);
        try (Connection connection = DriverManager.getConnection(adminJdbcUrl, user, password);
             Statement statement = connection.createStatement()) {
            // Names.unique guarantees [a-z0-9_-], so quoting is all the escaping needed.
            statement.execute("CREATE DATABASE \"" + name + "\"");
        } catch (SQLException e) {
            throw new IllegalStateException("could not create database " + name + " via " + adminJdbcUrl
                    + " as " + user, e);
        }
        return jdbcUrlOf.apply(name);
    }

    String createMigrated(String prefix) {
        String url = create(prefix);
        try {
            Flyway.configure()
                    .dataSource(url, user, password)
                    .locations(MIGRATIONS)
                    .failOnMissingLocations(true)
                    .load()
                    .migrate();
        } catch (RuntimeException e) {
            throw new IllegalStateException("could not migrate " + url + " from " + MIGRATIONS
                    + " (is module schemas on the class path?)", e);
        }
        return url;
    }
}
