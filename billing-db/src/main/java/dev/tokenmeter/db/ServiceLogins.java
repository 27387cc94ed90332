package dev.tokenmeter.db;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * The LOGIN roles the services connect as (ADR 0060): each is a member of one NOLOGIN group role of migration V12
 * and holds nothing else. Created or updated (password, membership) by the deployment's init step, as the owner.
 */
public final class ServiceLogins {

    public static final String EDGE = "tokenmeter_edge";
    public static final String SINK = "tokenmeter_sink";
    public static final String FINANCE = "tokenmeter_finance";
    /** The alert-notifier (migration V18): its webhooks, their delivery log and dead letters. */
    public static final String NOTIFIER = "tokenmeter_notifier";

    private ServiceLogins() {
    }

    /** Creates {@code user} (LOGIN, password) if missing, else resets its password; makes it a member of {@code groupRole}. */
    public static void ensure(String jdbcUrl, String ownerUser, String ownerPassword, String user, String password, String groupRole) {
        if (user.isBlank() || password.isBlank()) {
            throw new IllegalArgumentException("a service login needs a user and a password (group " + groupRole + ")");
        }
        try (Connection connection = DriverManager.getConnection(jdbcUrl, ownerUser, ownerPassword)) {
            boolean exists;
            try (PreparedStatement query = connection.prepareStatement("SELECT 1 FROM pg_roles WHERE rolname = ?")) {
                query.setString(1, user);
                try (ResultSet rs = query.executeQuery()) {
                    exists = rs.next();
                }
            }
            // format(%I, %L) quotes the name and the password on the server: no SQL built from them here.
            String verb = exists ? "ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L"
                    : "CREATE ROLE %I LOGIN PASSWORD %L";
            execute(connection, verb, user, password);
            execute(connection, "GRANT %I TO %I", groupRole, user);
        } catch (SQLException e) {
            // the statement text would carry the password: only the SQLSTATE and the names
            throw new IllegalStateException("could not create or update the login " + user + " (member of " + groupRole
                    + "): SQLSTATE " + e.getSQLState());
        }
    }

    private static void execute(Connection connection, String template, String... args) throws SQLException {
        String sql;
        try (PreparedStatement format = connection.prepareStatement("SELECT format(?" + ", ?".repeat(args.length) + ")")) {
            format.setString(1, template);
            for (int i = 0; i < args.length; i++) {
                format.setString(i + 2, args[i]);
            }
            try (ResultSet rs = format.executeQuery()) {
                rs.next();
                sql = rs.getString(1);
            }
        }
        try (Statement statement = connection.createStatement()) {
            statement.execute(sql);
        }
    }
}
