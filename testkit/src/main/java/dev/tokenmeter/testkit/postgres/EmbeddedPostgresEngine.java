package dev.tokenmeter.testkit.postgres;

import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.support.FreePorts;
import dev.tokenmeter.testkit.support.ManagedServer;
import dev.tokenmeter.testkit.support.WorkDirs;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A real Postgres (zonky's embedded binaries) on a free port, with a data directory that survives
 * {@link #stop()}/{@link #start()}, so fault tests can take the database away and get their rows back.
 */
public final class EmbeddedPostgresEngine extends ManagedServer implements PostgresEngine {

    private static final String HOST = "localhost";
    private static final String USER = "postgres";
    /** initdb runs with trust authentication; any password is accepted. */
    private static final String PASSWORD = "postgres";
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

    private final Path workDir;
    private final Path dataDir;
    private final int port;
    private final Databases databases;
    private EmbeddedPostgres postgres;

    private EmbeddedPostgresEngine() {
        super("Postgres");
        workDir = WorkDirs.create("tokenmeter-postgres-");
        dataDir = workDir.resolve("data");
        port = FreePorts.pick();
        databases = new Databases(jdbcUrl("postgres"), USER, PASSWORD, this::jdbcUrl, true);
    }

    public static EmbeddedPostgresEngine launch() {
        return launch(new EmbeddedPostgresEngine());
    }

    @Override
    public String host() {
        return HOST;
    }

    @Override
    public int port() {
        return port;
    }

    @Override
    public String user() {
        return USER;
    }

    @Override
    public String password() {
        return PASSWORD;
    }

    @Override
    public String jdbcUrl(String database) {
        return "jdbc:postgresql://" + HOST + ":" + port + "/" + database;
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

    @Override
    protected void startServer() {
        try {
            // initdb runs only when the data directory has no postgresql.conf yet, so a restart keeps the data.
            postgres = EmbeddedPostgres.builder()
                    .setPort(port)
                    .setDataDirectory(dataDir)
                    .setCleanDataDirectory(false)
                    // One hook per engine (ours), not one per start.
                    .setRegisterShutdownHook(false)
                    .setPGStartupWait(START_TIMEOUT)
                    .start();
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("the embedded Postgres did not start on port " + port
                    + " with data directory " + dataDir, e);
        }
    }

    @Override
    protected void stopServer() {
        EmbeddedPostgres running = postgres;
        postgres = null;
        try {
            running.close(); // pg_ctl stop -m fast; the data directory stays
        } catch (IOException e) {
            throw new UncheckedIOException("could not stop the embedded Postgres on port " + port, e);
        }
    }

    @Override
    protected boolean running() {
        return postgres != null;
    }

    @Override
    protected String where() {
        return HOST + ":" + port;
    }

    @Override
    protected void release() {
        WorkDirs.deleteQuietly(workDir);
    }
}
