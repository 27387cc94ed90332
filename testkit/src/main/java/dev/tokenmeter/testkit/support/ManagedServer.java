package dev.tokenmeter.testkit.support;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;

/**
 * The life of a server the testkit runs itself (the embedded backend): start, stop and start again on the same
 * port (fault tests), close once for good, and a JVM shutdown hook so that a test JVM that exits without closing
 * leaves no server behind. Subclasses say how to start, stop and probe their server and what to delete at the
 * end; this class keeps the bookkeeping (closed state, idempotent start/stop, the hook, timing logs) in one place.
 */
public abstract class ManagedServer implements AutoCloseable {

    private final Logger log = LoggerFactory.getLogger(getClass());
    private final String name;
    private final Thread shutdownHook;
    private boolean closed;

    /** @param name what the server is, for logs and errors ("Redis", "Postgres", "Kafka broker") */
    protected ManagedServer(String name) {
        this.name = name;
        this.shutdownHook = new Thread(this::closeQuietly, "tokenmeter-" + name.toLowerCase().replace(' ', '-') + "-shutdown");
    }

    /** Registers the shutdown hook and starts {@code server}; a failed start closes it (deleting its files) and rethrows. */
    protected static <S extends ManagedServer> S launch(S server) {
        ManagedServer managed = server;
        Runtime.getRuntime().addShutdownHook(managed.shutdownHook);
        try {
            managed.start();
        } catch (RuntimeException e) {
            managed.close();
            throw e;
        }
        return server;
    }

    /** Starts the server; does nothing if it runs. */
    public final synchronized void start() {
        if (closed) {
            throw new IllegalStateException("this embedded " + name + " is closed");
        }
        if (running()) {
            return;
        }
        long startNanos = System.nanoTime();
        startServer();
        log.info("embedded {} ready on {} in {} ms", name, where(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos));
    }

    /** Stops the server, keeping whatever data it keeps across a restart; does nothing if it is stopped. */
    public final synchronized void stop() {
        if (!running()) {
            return;
        }
        long startNanos = System.nanoTime();
        stopServer();
        log.info("embedded {} on {} stopped in {} ms", name, where(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos));
    }

    public final synchronized boolean isRunning() {
        return running();
    }

    /** Stops the server for good and deletes its files; idempotent. */
    @Override
    public final synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            stop();
        } finally {
            try {
                release();
            } finally {
                try {
                    Runtime.getRuntime().removeShutdownHook(shutdownHook);
                } catch (IllegalStateException alreadyShuttingDown) {
                    // we are running inside the hook
                }
            }
        }
    }

    /** Called with the lock held, only when the server is not running; returns once it accepts clients. */
    protected abstract void startServer();

    /** Called with the lock held, only when the server is running. */
    protected abstract void stopServer();

    /** Whether the server process is up (called with the lock held). */
    protected abstract boolean running();

    /** Where clients find the server (host:port), for logs. */
    protected abstract String where();

    /** Frees what outlives a stop (work directories, clients); called once, at close, after the server stopped. */
    protected void release() {
    }

    private void closeQuietly() {
        try {
            close();
        } catch (RuntimeException ignored) {
            // the JVM is exiting; nothing left to report to
        }
    }
}
