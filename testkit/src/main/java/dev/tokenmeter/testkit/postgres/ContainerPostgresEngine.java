package dev.tokenmeter.testkit.postgres;

import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.EngineVersions;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.support.DockerRequirement;
import dev.tokenmeter.testkit.support.UnmanagedServer;
import org.testcontainers.postgresql.PostgreSQLContainer;
import org.testcontainers.utility.DockerImageName;

/** Postgres from the postgres image of {@link EngineVersions}. Needs a Docker engine. */
public final class ContainerPostgresEngine extends UnmanagedServer implements PostgresEngine, AutoCloseable {

    public static final String IMAGE = EngineVersions.POSTGRES_IMAGE;

    private final PostgreSQLContainer container;
    private final Databases databases;

    private ContainerPostgresEngine(PostgreSQLContainer container) {
        super("containers", "Postgres", "a restarted container gets a new host port");
        this.container = container;
        this.databases = new Databases(jdbcUrl(container.getDatabaseName()), container.getUsername(),
                container.getPassword(), this::jdbcUrl, true);
    }

    public static ContainerPostgresEngine launch() {
        DockerRequirement.check("Postgres (" + IMAGE + ")");
        PostgreSQLContainer container = new PostgreSQLContainer(DockerImageName.parse(IMAGE));
        container.start();
        return new ContainerPostgresEngine(container);
    }

    @Override
    public String host() {
        return container.getHost();
    }

    @Override
    public int port() {
        return container.getMappedPort(PostgreSQLContainer.POSTGRESQL_PORT);
    }

    @Override
    public String user() {
        return container.getUsername();
    }

    @Override
    public String password() {
        return container.getPassword();
    }

    @Override
    public String jdbcUrl(String database) {
        return "jdbc:postgresql://" + host() + ":" + port() + "/" + database;
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
    public boolean isRunning() {
        return container.isRunning();
    }

    @Override
    public void close() {
        container.stop();
    }
}
