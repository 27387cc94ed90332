package dev.tokenmeter.local.load;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ProbesTest {

    @Test
    void spoolBytesAreTheSumOfItsFilesAtAnyDepth(@TempDir Path dir) throws Exception {
        Path spool = dir.resolve("spool");
        assertThat(Probes.directoryBytes(spool)).as("not created yet").isZero();
        Files.createDirectories(spool.resolve("segments/old"));
        Files.write(spool.resolve("head.log"), new byte[1000]);
        Files.write(spool.resolve("segments/1.seg"), new byte[4096]);
        Files.write(spool.resolve("segments/old/0.seg"), new byte[7]);
        assertThat(Probes.directoryBytes(spool)).isEqualTo(1000 + 4096 + 7);
    }

    @Test
    void readsUsedAndMaxMemoryFromInfo() {
        String info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:268435456\r\n"
                + "maxmemory_human:256.00M\r\nmaxmemory_policy:noeviction\r\n";
        assertThat(Probes.parseRedisMemory(info)).isEqualTo(new Probes.RedisMemory(1048576, 268435456));
        assertThatThrownBy(() -> Probes.parseRedisMemory("# Memory\r\nused_memory_human:1M\r\n"))
                .hasMessageContaining("used_memory");
    }

    @Test
    void aProcessThatIsGoneIsAnError() {
        assertThatThrownBy(() -> Probes.rssBytes(Long.MAX_VALUE)).hasMessageContaining("/proc/" + Long.MAX_VALUE);
        assertThatThrownBy(() -> Probes.openFileDescriptors(Long.MAX_VALUE)).hasMessageContaining("/fd");
    }
}
