package dev.tokenmeter.testkit.support;

import org.testcontainers.DockerClientFactory;

/** Fails the containers backend early, with a message that says what is missing. */
public final class DockerRequirement {

    private DockerRequirement() {
    }

    public static void check(String engine) {
        boolean available;
        try {
            available = DockerClientFactory.instance().isDockerAvailable();
        } catch (RuntimeException | LinkageError e) {
            available = false;
        }
        if (!available) {
            throw new IllegalStateException("the containers backend needs a Docker engine, and none was found to run "
                    + engine + " (tokenmeter.test.backend=containers). Start Docker, or use the embedded backend "
                    + "(the default, needs only a JDK) or the external one; see testkit/README.md.");
        }
    }
}
