package dev.tokenmeter.edge.publish;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * A durable local append-only log of opaque records: segment files {@code spool-<seq>.seg} in one directory, each a
 * run of {@code [int length][int crc32c(payload)][payload]} records.
 *
 * <p>Appends are made durable by group commit: one flusher thread calls {@code fsync} every fsync interval when
 * something was appended, and {@link #awaitDurable} returns once the fsync covering a record is done, so many
 * concurrent appenders share one fsync. A segment is fsync'd before it is sealed (when it reaches its size limit).
 *
 * <p>Reading is a cursor over the oldest records: {@link #peek} returns records from the cursor without moving it,
 * {@link #advance} moves it past records the caller has had acknowledged and deletes every segment now wholly
 * behind it. So a segment is deleted only after every record in it was acknowledged.
 *
 * <p>On open, each segment is scanned; a record whose length runs past the end of the file or whose CRC does not
 * match (a write torn by a crash) is cut off together with everything after it, and the file truncated there.
 * Appends after a restart go to a new segment. The record format itself is {@link SpoolRecords}.
 *
 * <p>Why one class of ~400 lines (issue 15 asks for the reason): appending, the group fsync, the read cursor and
 * segment deletion all work on the same segment map, byte and record counts under one lock, and the durability
 * promise of ADR 0050 is an invariant across them (a segment is fsync'd before it is sealed, deleted only when the
 * cursor is wholly past it, a record is acknowledged to its appender only after the fsync that covers it). Split
 * into a writer and a reader class, each would need the other's lock and counters, and the invariant would have no
 * single place to be read or checked. What has no share in that state, the on-disk record format, is apart.
 */
final class Spool implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Spool.class);
    static final int HEADER_BYTES = SpoolRecords.HEADER_BYTES;

    /** Where a reader is: a segment and a byte offset in it. */
    record Position(long segment, long offset) {
    }

    /** Records read from {@code start}; {@code end} is the position right after the last one. */
    record Batch(List<byte[]> records, Position end, List<Position> ends) {
        boolean isEmpty() {
            return records.isEmpty();
        }
    }

    private static final class Segment {
        final long seq;
        final Path path;
        long bytes;
        long records;

        Segment(long seq, Path path, long bytes, long records) {
            this.seq = seq;
            this.path = path;
            this.bytes = bytes;
            this.records = records;
        }
    }

    /** Where records Kafka refuses for good are set aside, inside the spool directory. */
    static final String REJECTED_DIR = "rejected";

    private final Path dir;
    private long setAsideSeq;
    private final long maxBytes;
    private final long segmentBytes;
    private final long fsyncIntervalNanos;
    private final TreeMap<Long, Segment> segments = new TreeMap<>();
    private final Thread flusher;

    // Guarded by this.
    private Segment active;
    private FileChannel activeChannel;
    private long totalBytes;
    private long pendingRecords;
    private long appendedRecords;
    private long nextSeq;
    private Position cursor;
    private boolean closed;
    /** Set when an append was refused for lack of space; cleared when space is freed. */
    private boolean full;

    // Guarded by durableLock.
    private final Object durableLock = new Object();
    private long durableRecords;

    /**
     * True while the flusher sleeps for want of anything to fsync; the next append wakes it. Without this it woke
     * every interval: ~500 wake-ups a second of an edge whose spool is empty (Kafka healthy), counted in issue 15's
     * benchmark as 0.7 context switches per call at one connection.
     */
    private volatile boolean flusherIdle;
    /** How long an idle flusher sleeps before it looks again without being woken (a safety net only). */
    private static final long IDLE_RECHECK_NANOS = 1_000_000_000L;

    private Spool(Path dir, long maxBytes, Duration fsyncInterval) {
        this.dir = dir;
        this.maxBytes = maxBytes;
        this.segmentBytes = Math.max(4 << 10, Math.min(16L << 20, maxBytes / 8));
        this.fsyncIntervalNanos = Math.max(100_000, fsyncInterval.toNanos());
        this.flusher = Thread.ofPlatform().daemon().name("spool-fsync").unstarted(this::flushLoop);
    }

    /** Opens (creating if needed) the spool in {@code dir}, recovering what a previous process left there. */
    static Spool open(Path dir, long maxBytes, Duration fsyncInterval) {
        Spool spool = new Spool(dir, maxBytes, fsyncInterval);
        try {
            Files.createDirectories(dir);
            spool.recover();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open spool directory " + dir, e);
        }
        spool.flusher.start();
        return spool;
    }

    private void recover() throws IOException {
        List<Path> files;
        try (Stream<Path> list = Files.list(dir)) {
            files = list.filter(p -> p.getFileName().toString().matches("spool-\\d{20}\\.seg")).sorted().toList();
        }
        long lastSeq = 0;
        for (Path file : files) {
            String name = file.getFileName().toString();
            long seq = Long.parseLong(name.substring(6, 26));
            lastSeq = Math.max(lastSeq, seq);
            long[] scan = SpoolRecords.scanAndTruncate(file);
            if (scan[1] == 0) {
                Files.delete(file);
                continue;
            }
            segments.put(seq, new Segment(seq, file, scan[0], scan[1]));
            totalBytes += scan[0];
            pendingRecords += scan[1];
        }
        nextSeq = lastSeq + 1;
        cursor = new Position(segments.isEmpty() ? nextSeq : segments.firstKey(), 0);
        if (pendingRecords > 0) {
            LOG.info("spool {} holds {} events ({} bytes) from before the restart; they will be replayed", dir,
                    pendingRecords, totalBytes);
        }
    }

    /**
     * Appends one record (not yet durable: call {@link #awaitDurable} with the returned number).
     *
     * @param enforceLimit false only for events already accepted from callers, which must not be dropped
     * @return the record's number for {@link #awaitDurable}
     */
    synchronized long append(byte[] payload, boolean enforceLimit) throws EventSink.SpoolFullException {
        if (closed) {
            throw new IllegalStateException("spool is closed");
        }
        int length = HEADER_BYTES + payload.length;
        if (enforceLimit && totalBytes + length > maxBytes) {
            full = true;
            throw new EventSink.SpoolFullException("event spool " + dir + " is full (" + totalBytes + " of "
                    + maxBytes + " bytes, SPOOL_MAX_BYTES)");
        }
        try {
            if (active == null || (active.bytes > 0 && active.bytes + length > segmentBytes)) {
                roll();
            }
            ByteBuffer buffer = SpoolRecords.encode(payload);
            long position = active.bytes;
            while (buffer.hasRemaining()) {
                position += activeChannel.write(buffer, position);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to event spool " + dir, e);
        }
        active.bytes += length;
        active.records++;
        totalBytes += length;
        pendingRecords++;
        long number = ++appendedRecords;
        if (flusherIdle) {
            LockSupport.unpark(flusher);
        }
        return number;
    }

    /** Seals the active segment (fsync'd, so a sealed segment is wholly durable) and starts a new one. */
    private void roll() throws IOException {
        if (activeChannel != null) {
            activeChannel.force(false);
            activeChannel.close();
        }
        long seq = nextSeq++;
        Path path = dir.resolve(String.format("spool-%020d.seg", seq));
        activeChannel = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        active = new Segment(seq, path, 0, 0);
        segments.put(seq, active);
        if (segments.size() == 1) {
            cursor = new Position(seq, 0);
        }
        markDurable(appendedRecords);
    }

    /** Blocks until the group fsync covering record {@code recordNumber} is done. */
    void awaitDurable(long recordNumber) {
        synchronized (durableLock) {
            while (durableRecords < recordNumber) {
                try {
                    durableLock.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for the spool's fsync");
                }
            }
        }
    }

    private void markDurable(long records) {
        synchronized (durableLock) {
            if (records > durableRecords) {
                durableRecords = records;
                durableLock.notifyAll();
            }
        }
    }

    private void flushLoop() {
        while (true) {
            LockSupport.parkNanos(fsyncIntervalNanos);
            long target;
            FileChannel channel;
            synchronized (this) {
                if (closed) {
                    return;
                }
                target = appendedRecords;
                channel = activeChannel;
            }
            boolean nothingToSync;
            synchronized (durableLock) {
                nothingToSync = target <= durableRecords;
            }
            if (nothingToSync) {
                awaitAppend(target);
                continue;
            }
            try {
                channel.force(false);
            } catch (ClosedChannelException e) {
                // Rolled or closed meanwhile: both fsync before closing, so the target is durable.
            } catch (IOException e) {
                LOG.error("fsync of the event spool failed; retrying: {}", e.toString());
                continue;
            }
            markDurable(target);
        }
    }

    /**
     * Sleeps until a record after the {@code seen}-th is appended or the spool closes. The flag is set before
     * {@code appendedRecords} is read under the lock an append holds, so an append either is seen here or sees the
     * flag and wakes this thread.
     */
    private void awaitAppend(long seen) {
        flusherIdle = true;
        try {
            while (true) {
                synchronized (this) {
                    if (closed || appendedRecords != seen) {
                        return;
                    }
                }
                LockSupport.parkNanos(IDLE_RECHECK_NANOS);
            }
        } finally {
            flusherIdle = false;
        }
    }

    /** Up to {@code max} records from the cursor, without moving it. */
    synchronized Batch peek(int max) {
        List<byte[]> out = new ArrayList<>();
        List<Position> ends = new ArrayList<>();
        Position p = cursor;
        try {
            ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES);
            for (Map.Entry<Long, Segment> e : segments.tailMap(p.segment(), true).entrySet()) {
                Segment s = e.getValue();
                long offset = s.seq == p.segment() ? p.offset() : 0;
                if (offset >= s.bytes) {
                    p = new Position(s.seq, s.bytes);
                    continue;
                }
                try (FileChannel ch = FileChannel.open(s.path, StandardOpenOption.READ)) {
                    while (offset < s.bytes && out.size() < max) {
                        byte[] payload = SpoolRecords.read(ch, offset, s.bytes, header);
                        if (payload == null) {
                            throw new IOException("corrupt record in " + s.path.getFileName() + " at byte " + offset);
                        }
                        out.add(payload);
                        offset += HEADER_BYTES + payload.length;
                        ends.add(new Position(s.seq, offset));
                    }
                }
                p = new Position(s.seq, offset);
                if (out.size() >= max) {
                    break;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read event spool " + dir, e);
        }
        return new Batch(out, p, ends);
    }

    /**
     * Writes a record Kafka refuses for good to {@code rejected/} beside the segments, with its reason, durably, before
     * the caller moves the cursor past it: {@code <epoch ms>-<n>.event} (the record's Avro bytes, as spooled) and
     * {@code <epoch ms>-<n>.reason} (one line). Segment recovery ignores the directory, so a restart never replays it.
     *
     * @return the path of the {@code .event} file
     */
    synchronized Path setAside(byte[] payload, String reason) {
        Path rejected = dir.resolve(REJECTED_DIR);
        try {
            Files.createDirectories(rejected);
            String base = System.currentTimeMillis() + "-" + (++setAsideSeq);
            Path event = rejected.resolve(base + ".event");
            writeDurably(rejected.resolve(base + ".reason"), (reason + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
            writeDurably(event, payload);
            return event;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot set aside a record in " + rejected, e);
        }
    }

    private static void writeDurably(Path file, byte[] bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(true);
        }
    }

    /** Moves the cursor to {@code to} (every record before it was acknowledged) and deletes segments wholly behind it. */
    synchronized void advance(Position to, int records) {
        cursor = to;
        pendingRecords -= records;
        while (!segments.isEmpty()) {
            Segment first = segments.firstEntry().getValue();
            boolean behind = first.seq < to.segment() || (first.seq == to.segment() && to.offset() >= first.bytes);
            if (!behind || first == active) {
                break;
            }
            delete(first);
        }
    }

    /**
     * When every record was acknowledged, deletes the active segment too (so an empty spool has no files) and
     * returns true; false if anything is still pending.
     */
    synchronized boolean resetIfDrained() {
        if (pendingRecords != 0) {
            return false;
        }
        if (active != null) {
            try {
                activeChannel.force(false);
                activeChannel.close();
            } catch (IOException e) {
                LOG.warn("closing drained spool segment failed: {}", e.toString());
            }
            markDurable(appendedRecords);
            activeChannel = null;
        }
        for (Segment s : List.copyOf(segments.values())) {
            delete(s);
        }
        active = null;
        cursor = new Position(nextSeq, 0);
        return true;
    }

    private void delete(Segment s) {
        try {
            Files.deleteIfExists(s.path);
        } catch (IOException e) {
            LOG.warn("cannot delete spool segment {}: {}", s.path, e.toString());
        }
        segments.remove(s.seq);
        totalBytes -= s.bytes;
        full = false;
    }

    /** True after an append was refused for lack of space, until a segment is deleted. */
    synchronized boolean isFull() {
        return full;
    }

    /**
     * True when, after {@code moreBytes} that may still come in, less than a tenth of the spool (at most 1 MiB)
     * would be left: the edge then stops admitting calls, so
     * the events of calls already under way still find room (a call is refused before it spends anything rather
     * than after its upstream answer, when its event would have nowhere to go).
     */
    synchronized boolean isNearlyFull(long moreBytes) {
        long headroom = Math.min(maxBytes / 10, 1L << 20);
        return full || totalBytes + moreBytes + headroom > maxBytes;
    }

    synchronized long bytes() {
        return totalBytes;
    }

    synchronized long pendingRecords() {
        return pendingRecords;
    }

    long maxBytes() {
        return maxBytes;
    }

    Path dir() {
        return dir;
    }

    /** fsyncs what was appended and closes the active segment; the files stay for the next start. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            if (activeChannel != null) {
                try {
                    activeChannel.force(false);
                    activeChannel.close();
                } catch (IOException e) {
                    LOG.error("final fsync of the event spool failed: {}", e.toString());
                }
            }
        }
        markDurable(Long.MAX_VALUE);
        LockSupport.unpark(flusher);
    }
}
