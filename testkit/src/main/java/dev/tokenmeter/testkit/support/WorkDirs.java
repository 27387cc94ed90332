package dev.tokenmeter.testkit.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/** Temporary working directories of the embedded engines. */
public final class WorkDirs {

    private WorkDirs() {
    }

    public static Path create(String prefix) {
        try {
            return Files.createTempDirectory(prefix);
        } catch (IOException e) {
            throw new UncheckedIOException("could not create a temporary directory " + prefix + "*", e);
        }
    }

    /** Deletes the directory tree; best effort (a file still held open elsewhere is left behind). */
    public static void deleteQuietly(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            List<Path> paths = walk.sorted(Comparator.reverseOrder()).toList();
            for (Path path : paths) {
                try {
                    Files.deleteIfExists(path);
                } catch (IOException ignored) {
                    // best effort: a temp dir left behind is harmless
                }
            }
        } catch (IOException | UncheckedIOException ignored) {
            // best effort
        }
    }

    /** The last {@code lines} lines of a text file, for error messages; never throws. */
    public static String tail(Path file, int lines) {
        try {
            // Decoded leniently: a half-written multi-byte character must not hide the log.
            List<String> all = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).lines().toList();
            return String.join(System.lineSeparator(), all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(could not read " + file + ": " + e + ")";
        }
    }
}
