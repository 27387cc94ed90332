package dev.tokenmeter.testkit.postgres;

import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.support.FreePorts;
import dev.tokenmeter.testkit.support.WorkDirs;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A real Postgres (zonky's embedded binaries) on a free port, with a data directory that survives
 * {@link #stop()}/{@link #start()}, so fault tests can take the database away and get their rows back.
 */
public final class EmbeddedPostgresEngine implements PostgresEngine, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedPostgresEngine.class);
    private static final String HOST = "localhost";
    private static final String USER = "postgres";
    /** initdb runs with trust authentication; any password is accepted. */
    private static final String PASSWORD = "postgres";
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

    private final Path workDir;
    private final Path dataDir;
    private final int port;
    private final Databases databases;
    private final Thread shutdownHook;
    private EmbeddedPostgres postgres;
    private boolean closed;

    private EmbeddedPostgresEngine() {
        workDir = WorkDirs.create("tokenmeter-postgres-");
        dataDir = workDir.resolve("data");
        port = FreePorts.pick();
        databases = new Databases(jdbcUrl("postgres"), USER, PASSWORD, this::jdbcUrl, true);
        shutdownHook = new Thread(this::closeQuietly, "tokenmeter-postgres-shutdown");
    }

    public static EmbeddedPostgresEngine launch() {
        EmbeddedPostgresEngine engine = new EmbeddedPostgresEngine();
        Runtime.getRuntime().addShutdownHook(engine.shutdownHook);
        try {
            engine.start();
        } catch (RuntimeException e) {
            engine.close();
            throw e;
        }
        return engine;
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
    public String createDatabase(String prefix) {
        return databases.create(prefix);
    }

    @Override
    public synchronized void start() {
        if (closed) {
            throw new IllegalStateException("this Postgres engine is closed");
        }
        if (postgres != null) {
            return;
        }
        long startNanos = System.nanoTime();
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
        LOG.info("embedded Postgres ready on {}:{} in {} ms", HOST, port,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos));
    }

    @Override
    public synchronized void stop() {
        if (postgres == null) {
            return;
        }
        EmbeddedPostgres running = postgres;
        postgres = null;
        try {
            running.close(); // pg_ctl stop -m fast; the data directory stays
        } catch (IOException e) {
            throw new UncheckedIOException("could not stop the embedded Postgres on port " + port, e);
        }
    }

    @Override
    public synchronized boolean isRunning() {
        return postgres != null;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            stop();
        } finally {
            WorkDirs.deleteQuietly(workDir);
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException alreadyShuttingDown) {
                // we are running inside the hook
            }
        }
    }

    private void closeQuietly() {
        try {
            close();
        } catch (RuntimeException ignored) {
            // JVM is exiting
        }
    }
}
