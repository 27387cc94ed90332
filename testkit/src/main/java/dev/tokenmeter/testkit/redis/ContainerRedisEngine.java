package dev.tokenmeter.testkit.redis;

import dev.tokenmeter.testkit.EngineVersions;
import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.support.DockerRequirement;
import dev.tokenmeter.testkit.support.UnmanagedServer;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.utility.DockerImageName;

import java.util.UUID;

/** Redis from the redis image of {@link EngineVersions}. Needs a Docker engine. */
public final class ContainerRedisEngine extends UnmanagedServer implements RedisEngine, AutoCloseable {

    public static final String IMAGE = EngineVersions.REDIS_IMAGE;
    private static final int REDIS_PORT = 6379;

    private final GenericContainer<?> container;
    private final String password;

    private ContainerRedisEngine(GenericContainer<?> container, String password) {
        super("containers", "Redis", "a restarted container gets a new host port");
        this.container = container;
        this.password = password;
    }

    public static ContainerRedisEngine launch() {
        DockerRequirement.check("Redis (" + IMAGE + ")");
        String password = UUID.randomUUID().toString().replace("-", "");
        // As the embedded engine and docker-compose: only the ACL user logs in, the default user is off.
        GenericContainer<?> container = new GenericContainer<>(DockerImageName.parse(IMAGE))
                .withExposedPorts(REDIS_PORT)
                .withCommand("redis-server", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
                        "--user", "default", "off", "--user", EmbeddedRedisEngine.USER, "on", ">" + password, "~*", "&*", "+@all");
        container.start();
        return new ContainerRedisEngine(container, password);
    }

    @Override
    public String host() {
        return container.getHost();
    }

    @Override
    public int port() {
        return container.getMappedPort(REDIS_PORT);
    }

    @Override
    public String user() {
        return EmbeddedRedisEngine.USER;
    }

    @Override
    public String password() {
        return password;
    }

    @Override
    public String uri() {
        return "redis://" + user() + ":" + password + "@" + host() + ":" + port();
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
