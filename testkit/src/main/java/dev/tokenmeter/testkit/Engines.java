package dev.tokenmeter.testkit;

import dev.tokenmeter.testkit.kafka.ContainerKafkaEngine;
import dev.tokenmeter.testkit.kafka.EmbeddedKafkaEngine;
import dev.tokenmeter.testkit.kafka.ExternalKafkaEngine;
import dev.tokenmeter.testkit.postgres.ContainerPostgresEngine;
import dev.tokenmeter.testkit.postgres.EmbeddedPostgresEngine;
import dev.tokenmeter.testkit.postgres.ExternalPostgresEngine;
import dev.tokenmeter.testkit.redis.ContainerRedisEngine;
import dev.tokenmeter.testkit.redis.EmbeddedRedisEngine;
import dev.tokenmeter.testkit.redis.ExternalRedisEngine;

import java.util.Objects;
import java.util.function.Supplier;

/**
 * Kafka, Redis and Postgres for tests and the local stack, from one {@link Backend}. Each engine starts on
 * first access, so a Redis-only test never boots Kafka.
 *
 * <p>In JUnit use {@link #shared()} (or {@link EnginesExtension}); from a plain {@code main}
 * use {@code try (Engines engines = Engines.create(Backend.EMBEDDED)) { ... }}.
 *
 * <p>External backend settings (system property, else environment variable):
 * <ul>
 *   <li>{@code tokenmeter.kafka.bootstrap} / {@code TOKENMETER_KAFKA_BOOTSTRAP}: host:port[,host:port]</li>
 *   <li>{@code tokenmeter.redis.uri} / {@code TOKENMETER_REDIS_URI}: redis://user:password@host:port</li>
 *   <li>{@code tokenmeter.postgres.url} / {@code TOKENMETER_POSTGRES_URL}: JDBC URL of an admin database</li>
 *   <li>{@code tokenmeter.postgres.user} / {@code TOKENMETER_POSTGRES_USER}</li>
 *   <li>{@code tokenmeter.postgres.password} / {@code TOKENMETER_POSTGRES_PASSWORD} (optional, default empty)</li>
 * </ul>
 */
public final class Engines implements AutoCloseable {

    private static Engines shared;

    private final Backend backend;
    private final boolean isShared;
    private final Lazy<KafkaEngine> kafka;
    private final Lazy<RedisEngine> redis;
    private final Lazy<PostgresEngine> postgres;
    private volatile boolean closed;

    private Engines(Backend backend, boolean isShared) {
        this(backend, isShared, null);
    }

    private Engines(Backend backend, boolean isShared, Supplier<KafkaEngine> kafka) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.isShared = isShared;
        this.kafka = new Lazy<>(kafka != null ? kafka : this::startKafka);
        this.redis = new Lazy<>(this::startRedis);
        this.postgres = new Lazy<>(this::startPostgres);
    }

    /**
     * One set per JVM for the backend from {@link Backend#fromEnvironment()}; each engine starts lazily on first
     * access; closed by a JVM shutdown hook. {@link #close()} on the shared set does nothing, so one test
     * cannot take the engines away from the others.
     */
    public static synchronized Engines shared() {
        if (shared == null) {
            Engines engines = new Engines(Backend.fromEnvironment(), true);
            Runtime.getRuntime().addShutdownHook(new Thread(engines::closeEngines, "tokenmeter-engines-shutdown"));
            shared = engines;
        }
        return shared;
    }

    /** A private set; the caller closes it. */
    public static Engines create(Backend backend) {
        return new Engines(backend, false);
    }

    /**
     * A private set whose Kafka is the one {@code kafka} starts (on first use, like the others; closed with the set),
     * e.g. a broker behind a proxy ({@code EmbeddedKafkaEngine.launchBehindProxy}); Redis and Postgres from
     * {@code backend}.
     */
    public static Engines create(Backend backend, Supplier<KafkaEngine> kafka) {
        return new Engines(backend, false, Objects.requireNonNull(kafka, "kafka"));
    }

    public KafkaEngine kafka() {
        return kafka.get();
    }

    public RedisEngine redis() {
        return redis.get();
    }

    public PostgresEngine postgres() {
        return postgres.get();
    }

    public Backend backend() {
        return backend;
    }

    /** Stops every engine this set started and deletes their data; a no-op on {@link #shared()}. */
    @Override
    public void close() {
        if (!isShared) {
            closeEngines();
        }
    }

    private void closeEngines() {
        closed = true;
        RuntimeException failure = null;
        for (Lazy<?> engine : new Lazy<?>[] {kafka, redis, postgres}) {
            try {
                engine.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    private KafkaEngine startKafka() {
        return switch (backend) {
            case EMBEDDED -> EmbeddedKafkaEngine.launch();
            case CONTAINERS -> ContainerKafkaEngine.launch();
            case EXTERNAL -> new ExternalKafkaEngine(Settings.required("tokenmeter.kafka.bootstrap",
                    "TOKENMETER_KAFKA_BOOTSTRAP", "Kafka's bootstrap servers (host:port)"));
        };
    }

    private RedisEngine startRedis() {
        return switch (backend) {
            case EMBEDDED -> EmbeddedRedisEngine.launch();
            case CONTAINERS -> ContainerRedisEngine.launch();
            case EXTERNAL -> new ExternalRedisEngine(Settings.required("tokenmeter.redis.uri",
                    "TOKENMETER_REDIS_URI", "Redis's URI (redis://user:password@host:port)"), "tokenmeter.redis.uri");
        };
    }

    private PostgresEngine startPostgres() {
        return switch (backend) {
            case EMBEDDED -> EmbeddedPostgresEngine.launch();
            case CONTAINERS -> ContainerPostgresEngine.launch();
            case EXTERNAL -> new ExternalPostgresEngine(
                    Settings.required("tokenmeter.postgres.url", "TOKENMETER_POSTGRES_URL",
                            "the JDBC URL of a Postgres admin database (jdbc:postgresql://host:port/postgres)"),
                    "tokenmeter.postgres.url",
                    Settings.required("tokenmeter.postgres.user", "TOKENMETER_POSTGRES_USER",
                            "the Postgres user (allowed to CREATE DATABASE)"),
                    Settings.optional("tokenmeter.postgres.password", "TOKENMETER_POSTGRES_PASSWORD", ""));
        };
    }

    /** Starts an engine once, on first use; a failed start is retried on the next access. */
    private final class Lazy<T> {
        private final Supplier<T> starter;
        private T value;

        Lazy(Supplier<T> starter) {
            this.starter = starter;
        }

        synchronized T get() {
            if (closed) {
                throw new IllegalStateException("these engines (" + backend + ") are closed");
            }
            if (value == null) {
                value = starter.get();
            }
            return value;
        }

        synchronized void close() {
            if (value instanceof AutoCloseable closeable) {
                try {
                    closeable.close();
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new IllegalStateException("could not close " + value, e);
                }
            }
            value = null;
        }
    }
}
