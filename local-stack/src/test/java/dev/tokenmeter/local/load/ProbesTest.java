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
    void heapInUseIsTheSumOfTheHeapLinesOfGcHeapInfo() {
        // JDK 25, -XX:+UseSerialGC, right after GC.run: the generations count, Metaspace and class space do not
        String serial = """
                12443:
                Command executed successfully
                 def new generation   total 116224K, used 100K [0x00000000e8000000, 0x00000000efe10000, 0x00000000f0000000)
                  eden space 103360K,   0% used [0x00000000e8000000, 0x00000000e8000000, 0x00000000ee4f0000)
                  from space 12864K,   0% used [0x00000000ee4f0000, 0x00000000ee4f0000, 0x00000000ef180000)
                 tenured generation   total 258048K, used 2241K [0x00000000f0000000, 0x00000000ffc00000, 0x0000000100000000)
                   the space 258048K,   0% used [0x00000000f0000000, 0x00000000f0230480, 0x00000000f0230600, 0x00000000ffc00000)
                 Metaspace       used 8922K, committed 9088K, reserved 1114112K
                  class space    used 1062K, committed 1152K, reserved 1048576K
                """;
        assertThat(Probes.parseHeapInfoUsedBytes(serial)).isEqualTo((100 + 2241) * 1024L);
        String g1 = """
                4683:
                Command executed successfully
                garbage-first heap   total reserved 6172672K, committed 180224K, used 47733K [0x0000000687400000, 0x0000000800000000)
                 region size 4096K, 1 young (4096K), 0 survivors (0K)
                 Metaspace       used 8922K, committed 9088K, reserved 1114112K
                """;
        assertThat(Probes.parseHeapInfoUsedBytes(g1)).isEqualTo(47733 * 1024L);
        // the shipped services' serial heaps as the load program saw them
        String serialShort = """
                4340:
                Command executed successfully
                DefNew     total 116224K, used 899K [0x00000000e8000000, 0x00000000efe10000, 0x00000000f0000000)
                 eden space 103360K,   0% used [0x00000000e8000000, 0x00000000e80e0e38, 0x00000000ee4f0000)
                 from space 12864K,   0% used [0x00000000ef180000, 0x00000000ef180000, 0x00000000efe10000)
                Tenured     total 258048K, used 41000K [0x00000000f0000000, 0x00000000ffc00000, 0x0000000100000000)
                Metaspace       used 8922K, committed 9088K, reserved 1114112K
                """;
        assertThat(Probes.parseHeapInfoUsedBytes(serialShort)).isEqualTo((899 + 41000) * 1024L);
        assertThatThrownBy(() -> Probes.parseHeapInfoUsedBytes("4683:\nCould not find any such process\n"))
                .hasMessageContaining("no heap line");
    }

    @Test
    void aProcessThatIsGoneIsAnError() {
        assertThatThrownBy(() -> Probes.rssBytes(Long.MAX_VALUE)).hasMessageContaining("/proc/" + Long.MAX_VALUE);
        assertThatThrownBy(() -> Probes.openFileDescriptors(Long.MAX_VALUE)).hasMessageContaining("/fd");
    }
}
