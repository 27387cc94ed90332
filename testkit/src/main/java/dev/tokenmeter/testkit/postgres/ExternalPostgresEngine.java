package dev.tokenmeter.testkit.postgres;

import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.support.UnmanagedServer;

import java.net.URI;

/**
 * A Postgres that is already running. Configured with the JDBC URL of an admin database (one the user may
 * run CREATE DATABASE from); per-test databases get the same URL with another database name. This engine
 * neither starts nor stops the server, and leaves the databases it created behind (they are uniquely named).
 */
public final class ExternalPostgresEngine extends UnmanagedServer implements PostgresEngine, AutoCloseable {

    private static final String PREFIX = "jdbc:postgresql://";
    private static final int DEFAULT_PORT = 5432;

    private final String hostAndPort;
    private final String query;
    private final String host;
    private final int port;
    private final String user;
    private final String password;
    private final Databases databases;

    /**
     * @param adminJdbcUrl jdbc:postgresql://host[:port]/database[?params]
     * @param key          the setting it came from, for error messages
     */
    public ExternalPostgresEngine(String adminJdbcUrl, String key, String user, String password) {
        super("external", "Postgres", "it belongs to whoever runs it: " + key);
        if (!adminJdbcUrl.startsWith(PREFIX)) {
            throw new IllegalArgumentException(key + "='" + adminJdbcUrl + "' is not a jdbc:postgresql://host:port/database URL");
        }
        String rest = adminJdbcUrl.substring(PREFIX.length());
        int slash = rest.indexOf('/');
        if (slash <= 0) {
            throw new IllegalArgumentException(key + "='" + adminJdbcUrl + "' names no database (jdbc:postgresql://host:port/database)");
        }
        this.hostAndPort = rest.substring(0, slash);
        int question = rest.indexOf('?', slash);
        this.query = question < 0 ? "" : rest.substring(question);
        URI parsed = URI.create("postgresql://" + hostAndPort);
        if (parsed.getHost() == null) {
            throw new IllegalArgumentException(key + "='" + adminJdbcUrl + "' has no usable host");
        }
        this.host = parsed.getHost();
        this.port = parsed.getPort() == -1 ? DEFAULT_PORT : parsed.getPort();
        this.user = user;
        this.password = password;
        this.databases = new Databases(adminJdbcUrl, user, password, this::jdbcUrl, false);
    }

    @Override
    public String host() {
        return host;
    }

    @Override
    public int port() {
        return port;
    }

    @Override
    public String user() {
        return user;
    }

    @Override
    public String password() {
        return password;
    }

    @Override
    public String jdbcUrl(String database) {
        return PREFIX + hostAndPort + "/" + database + query;
    }

    @Override
    public String createMigratedDatabase(String prefix) {
        return databases.createMigrated(prefix);
    }

    @Override
    public DatabaseLogin login(String groupRole) {
        return databases.login(groupRole);
    }

    @Override
    public String createDatabase(String prefix) {
        return databases.create(prefix);
    }

    /** Always true: the external backend does not manage the server's life. */
    @Override
    public boolean isRunning() {
        return true;
    }

    @Override
    public void close() {
        // nothing to release; the server and its databases belong to whoever runs it
    }
}
