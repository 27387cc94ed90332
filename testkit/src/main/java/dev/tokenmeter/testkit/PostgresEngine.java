package dev.tokenmeter.testkit;

/** A Postgres server for tests; each test gets its own database. */
public interface PostgresEngine {

    String host();

    int port();

    String user();

    String password();

    String jdbcUrl(String database);

    /**
     * Creates a fresh, uniquely named database (prefix + suffix), applies the Flyway migrations from
     * classpath:db/migration (module schemas), and returns its JDBC URL.
     */
    String createMigratedDatabase(String prefix);

    /** Same without migrations. */
    String createDatabase(String prefix);

    /**
     * A user that logs in with only the grants of {@code groupRole} (tokenmeter_edge, tokenmeter_sink,
     * tokenmeter_finance: migration V12), as a deployed service does; {@link #user()} is the schema's owner.
     */
    DatabaseLogin login(String groupRole);

    /** Stops the server (fault tests); its data survives; start() brings it back on the same port. */
    void stop();

    void start();

    boolean isRunning();
}
