package dev.tokenmeter.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Where a module's shipped jar is: {@code <repository root>/<module>/target/<module>-<version>-all.jar}, the file
 * the Dockerfile copies into the image. The repository root is the nearest directory, from the working directory
 * up, that holds {@code mvnw} and the module's {@code pom.xml} (Maven runs a module's tests in the module's
 * directory; {@code ./run-pipeline} runs from the root).
 */
public final class ShippedJar {

    private ShippedJar() {
    }

    /** The module's {@code -all.jar}, or an error that names the Maven command that builds it. */
    public static Path locate(String module) {
        return locate(module, Path.of("").toAbsolutePath());
    }

    static Path locate(String module, Path from) {
        Path root = repositoryRoot(module, from);
        Path target = root.resolve(module).resolve("target");
        List<Path> jars;
        try (Stream<Path> files = Files.exists(target) ? Files.list(target) : Stream.empty()) {
            jars = files.filter(p -> {
                String n = p.getFileName().toString();
                return n.startsWith(module + "-") && n.endsWith("-all.jar");
            }).toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + target, e);
        }
        if (jars.isEmpty()) {
            throw new IllegalStateException("no shipped jar " + module + "-*-all.jar in " + target
                    + "; build it with: ./mvnw -B -ntp package -DskipTests -pl " + module + " -am");
        }
        // After a version change both may be there: the newest is the one just built.
        return jars.stream().max(Comparator.comparing(ShippedJar::modified)).orElseThrow();
    }

    static Path repositoryRoot(String module, Path from) {
        for (Path dir = from; dir != null; dir = dir.getParent()) {
            if (Files.exists(dir.resolve("mvnw")) && Files.exists(dir.resolve(module).resolve("pom.xml"))) {
                return dir;
            }
        }
        throw new IllegalStateException("no tokenmeter repository (mvnw and " + module + "/pom.xml) at or above " + from);
    }

    private static long modified(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            return 0;
        }
    }
}
