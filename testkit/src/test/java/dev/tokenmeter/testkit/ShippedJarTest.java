package dev.tokenmeter.testkit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Issue 13: the tests find the jar the Dockerfile ships, or say how to build it. */
class ShippedJarTest {

    @TempDir
    Path repo;

    @Test
    void findsTheAllJarFromTheRootAndFromAModuleDirectory() throws IOException {
        Path target = module("edge-service").resolve("target");
        Files.createDirectories(target);
        Files.writeString(target.resolve("edge-service-0.1.0-SNAPSHOT.jar"), "thin");
        Path all = Files.writeString(target.resolve("edge-service-0.1.0-SNAPSHOT-all.jar"), "shaded");
        Path localStack = module("local-stack");

        assertThat(ShippedJar.locate("edge-service", repo)).isEqualTo(all);
        assertThat(ShippedJar.locate("edge-service", localStack)).isEqualTo(all);
    }

    @Test
    void aMissingJarNamesTheMavenCommandThatBuildsIt() throws IOException {
        module("billing-sink");

        assertThatThrownBy(() -> ShippedJar.locate("billing-sink", repo))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("billing-sink-*-all.jar")
                .hasMessageContaining("./mvnw -B -ntp package -DskipTests -pl billing-sink -am");
    }

    @Test
    void outsideTheRepositoryItSaysSo() {
        assertThatThrownBy(() -> ShippedJar.locate("aggregator-streams", repo))
                .hasMessageContaining("no tokenmeter repository");
    }

    private Path module(String name) throws IOException {
        Files.writeString(repo.resolve("mvnw"), "#!/bin/sh\n");
        Path dir = Files.createDirectories(repo.resolve(name));
        Files.writeString(dir.resolve("pom.xml"), "<project/>");
        return dir;
    }
}
