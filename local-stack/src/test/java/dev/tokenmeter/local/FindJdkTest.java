package dev.tokenmeter.local;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 13: bin/find-jdk.sh, which ./mvnw, .ci/run and ./run-pipeline use, picks the newest JDK >= 21 among
 * fake JDK homes (TOKENMETER_JDK_DIRS) and fails with one line when there is none.
 */
class FindJdkTest {

    private static Path script;

    @TempDir
    Path jvms;

    @BeforeAll
    static void findScript() {
        Path root = Path.of("").toAbsolutePath();
        while (!Files.exists(root.resolve("bin/find-jdk.sh"))) {
            root = root.getParent();
            assertThat(root).as("bin/find-jdk.sh above the module").isNotNull();
        }
        script = root.resolve("bin/find-jdk.sh");
    }

    record Result(int exit, String out, String err) {
    }

    @Test
    void picksTheNewestJdkOf21OrLater() throws Exception {
        fakeJdk("jdk-17", "17.0.12", true);
        fakeJdk("jdk-21", "21.0.5", true);
        // No release file: the script asks its java.
        fakeJdk("jdk-22", null, true);
        // A runtime without javac cannot build.
        fakeJdk("jre-26", "26", false);

        Result printed = run("bin/find-jdk.sh --print");
        assertThat(printed.exit()).as(printed.err()).isZero();
        assertThat(printed.out().strip()).isEqualTo(jvms.resolve("jdk-22").toString());

        Result sourced = run("source bin/find-jdk.sh && echo \"$JAVA_HOME\" && command -v java");
        assertThat(sourced.exit()).as(sourced.err()).isZero();
        assertThat(sourced.out().lines().toList())
                .containsExactly(jvms.resolve("jdk-22").toString(), jvms.resolve("jdk-22/bin/java").toString());
    }

    @Test
    void failsWithOneClearLineWhenThereIsNone() throws Exception {
        fakeJdk("jdk-17", "17.0.12", true);
        fakeJdk("jre-25", "25", false);

        for (String command : List.of("bin/find-jdk.sh --print", "set -e; source bin/find-jdk.sh; echo sourced-on")) {
            Result r = run(command);
            assertThat(r.exit()).as(command).isEqualTo(1);
            assertThat(r.out()).as(command).isEmpty();
            assertThat(r.err().lines().toList()).as(command).singleElement().asString()
                    .startsWith("error: tokenmeter needs a JDK 21 or newer and found none")
                    .contains(jvms.toString());
        }
    }

    private void fakeJdk(String name, String releaseVersion, boolean withJavac) throws IOException {
        Path bin = Files.createDirectories(jvms.resolve(name).resolve("bin"));
        String major = name.replaceAll("\\D", "");
        // What a real java prints for -XshowSettings:properties -version (on stderr).
        executable(bin.resolve("java"), "#!/bin/sh\necho '    java.specification.version = " + major + "' >&2\n");
        if (withJavac) {
            executable(bin.resolve("javac"), "#!/bin/sh\nexit 0\n");
        }
        if (releaseVersion != null) {
            Files.writeString(jvms.resolve(name).resolve("release"), "IMPLEMENTOR=\"Fake\"\nJAVA_VERSION=\"" + releaseVersion + "\"\n");
        }
    }

    private static void executable(Path file, String text) throws IOException {
        Files.writeString(file, text);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    private Result run(String command) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", command).directory(script.getParent().getParent().toFile());
        pb.environment().put("TOKENMETER_JDK_DIRS", jvms.toString());
        pb.environment().remove("JAVA_HOME");
        Process p = pb.start();
        p.getOutputStream().close();
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).as("%s finishes", command).isTrue();
        return new Result(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8),
                new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
    }
}
