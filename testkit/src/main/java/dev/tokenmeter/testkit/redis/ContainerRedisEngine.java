package dev.tokenmeter.testkit.redis;

import dev.tokenmeter.testkit.RedisEngine;
import dev.tokenmeter.testkit.support.DockerRequirement;
import dev.tokenmeter.testkit.support.UnmanagedServer;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.utility.DockerImageName;

/** Redis from the redis:7 image. Needs a Docker engine. */
public final class ContainerRedisEngine extends UnmanagedServer implements RedisEngine, AutoCloseable {

    public static final String IMAGE = "redis:7";
    private static final int REDIS_PORT = 6379;

    private final GenericContainer<?> container;

    private ContainerRedisEngine(GenericContainer<?> container) {
        super("containers", "Redis", "a restarted container gets a new host port");
        this.container = container;
    }

    public static ContainerRedisEngine launch() {
        DockerRequirement.check("Redis (" + IMAGE + ")");
        GenericContainer<?> container = new GenericContainer<>(DockerImageName.parse(IMAGE))
                .withExposedPorts(REDIS_PORT)
                .withCommand("redis-server", "--save", "", "--appendonly", "no");
        container.start();
        return new ContainerRedisEngine(container);
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
    public String uri() {
        return "redis://" + host() + ":" + port();
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
