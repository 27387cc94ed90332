package dev.tokenmeter.edge.publish;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * The record format of a {@link Spool} segment: {@code [int length][int crc32c(payload)][payload]}, one after the
 * other. Encoding, reading one record back, and the recovery scan that cuts a torn or corrupt tail off a segment.
 * Stateless; the spool decides where records go and when they are durable.
 */
final class SpoolRecords {

    private static final Logger LOG = LoggerFactory.getLogger(SpoolRecords.class);
    static final int HEADER_BYTES = 8;
    static final int MAX_RECORD_BYTES = 16 << 20;

    private SpoolRecords() {
    }

    /** The record of {@code payload}, header included, ready to write. */
    static ByteBuffer encode(byte[] payload) {
        ByteBuffer buffer = ByteBuffer.allocate(HEADER_BYTES + payload.length);
        buffer.putInt(payload.length).putInt(crc(payload)).put(payload).flip();
        return buffer;
    }

    /** Returns {valid bytes, records}; truncates a torn or corrupt tail. */
    static long[] scanAndTruncate(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = ch.size();
            long offset = 0;
            long records = 0;
            ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES);
            while (offset < size) {
                byte[] payload = read(ch, offset, size, header);
                if (payload == null) {
                    LOG.warn("spool segment {}: torn or corrupt record at byte {} of {}; truncating it and what follows",
                            file.getFileName(), offset, size);
                    ch.truncate(offset);
                    ch.force(true);
                    break;
                }
                offset += HEADER_BYTES + payload.length;
                records++;
            }
            return new long[] {offset, records};
        }
    }

    /** The payload of the record at {@code offset}, or null if it is incomplete or fails its CRC. */
    static byte[] read(FileChannel ch, long offset, long limit, ByteBuffer header) throws IOException {
        if (offset + HEADER_BYTES > limit) {
            return null;
        }
        header.clear();
        readFully(ch, header, offset);
        header.flip();
        int length = header.getInt();
        int crc = header.getInt();
        if (length < 0 || length > MAX_RECORD_BYTES || offset + HEADER_BYTES + length > limit) {
            return null;
        }
        ByteBuffer payload = ByteBuffer.allocate(length);
        readFully(ch, payload, offset + HEADER_BYTES);
        byte[] bytes = payload.array();
        return crc(bytes) == crc ? bytes : null;
    }

    private static void readFully(FileChannel ch, ByteBuffer buffer, long position) throws IOException {
        long p = position;
        while (buffer.hasRemaining()) {
            int n = ch.read(buffer, p);
            if (n < 0) {
                throw new IOException("unexpected end of spool segment");
            }
            p += n;
        }
    }

    static int crc(byte[] bytes) {
        CRC32C crc = new CRC32C();
        crc.update(bytes);
        return (int) crc.getValue();
    }
}
