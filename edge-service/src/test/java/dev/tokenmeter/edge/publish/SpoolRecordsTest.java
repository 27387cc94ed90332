package dev.tokenmeter.edge.publish;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.assertj.core.api.Assertions.assertThat;

/** The segment record format on its own: what is written, what reads back, what counts as torn. */
class SpoolRecordsTest {

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    @Test
    void aRecordIsLengthCrcPayload_andReadsBack(@TempDir Path dir) throws Exception {
        byte[] payload = "hello".getBytes(StandardCharsets.UTF_8);
        byte[] record = bytes(SpoolRecords.encode(payload));
        assertThat(record).hasSize(SpoolRecords.HEADER_BYTES + payload.length);
        ByteBuffer header = ByteBuffer.wrap(record);
        assertThat(header.getInt()).isEqualTo(5);
        assertThat(header.getInt()).isEqualTo(SpoolRecords.crc(payload));

        Path file = dir.resolve("one.seg");
        Files.write(file, record);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer h = ByteBuffer.allocate(SpoolRecords.HEADER_BYTES);
            assertThat(SpoolRecords.read(ch, 0, record.length, h)).isEqualTo(payload);
            // A limit short of the record's end: the record is incomplete there.
            assertThat(SpoolRecords.read(ch, 0, record.length - 1, h)).isNull();
            assertThat(SpoolRecords.read(ch, 0, SpoolRecords.HEADER_BYTES - 1, h)).isNull();
        }
    }

    @Test
    void anImpossibleLength_isTorn_andTheScanCutsItAndWhatFollows(@TempDir Path dir) throws Exception {
        byte[] good = bytes(SpoolRecords.encode(new byte[] {1, 2, 3}));
        ByteBuffer huge = ByteBuffer.allocate(SpoolRecords.HEADER_BYTES + 4);
        huge.putInt(SpoolRecords.MAX_RECORD_BYTES + 1).putInt(0).putInt(7);
        Path file = dir.resolve("torn.seg");
        Files.write(file, good);
        Files.write(file, huge.array(), StandardOpenOption.APPEND);
        Files.write(file, good, StandardOpenOption.APPEND);

        long[] scan = SpoolRecords.scanAndTruncate(file);

        assertThat(scan).containsExactly(good.length, 1);
        assertThat(Files.size(file)).isEqualTo(good.length);
    }
}
