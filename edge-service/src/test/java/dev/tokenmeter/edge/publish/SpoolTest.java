package dev.tokenmeter.edge.publish;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** The spool's file format, recovery and group commit, on the local disk. */
class SpoolTest {

    @TempDir
    Path dir;

    private static byte[] record(int i) {
        return ("event-" + i).getBytes(StandardCharsets.UTF_8);
    }

    private List<String> drain(Spool spool) {
        List<String> out = new ArrayList<>();
        while (true) {
            Spool.Batch b = spool.peek(7);
            if (b.isEmpty()) {
                return out;
            }
            b.records().forEach(r -> out.add(new String(r, StandardCharsets.UTF_8)));
            spool.advance(b.end(), b.records().size());
        }
    }

    private long segments() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.count();
        }
    }

    @Test
    void recordsComeBackInOrder_acrossSegments_andAcknowledgedSegmentsAreDeleted() throws Exception {
        try (Spool spool = Spool.open(dir, 256 << 10, Duration.ofMillis(1))) {
            long last = 0;
            for (int i = 0; i < 5_000; i++) {
                last = spool.append(record(i), true);
            }
            spool.awaitDurable(last);
            assertThat(segments()).as("rolled into several segments").isGreaterThan(1);
            List<String> read = drain(spool);
            assertThat(read).hasSize(5_000);
            assertThat(read.getFirst()).isEqualTo("event-0");
            assertThat(read.getLast()).isEqualTo("event-4999");
            assertThat(spool.resetIfDrained()).isTrue();
            assertThat(segments()).isZero();
        }
    }

    @Test
    void aRecordWithABadCrc_atTheTail_isCutOnOpen() throws Exception {
        try (Spool spool = Spool.open(dir, 1 << 20, Duration.ofMillis(1))) {
            for (int i = 0; i < 3; i++) {
                spool.awaitDurable(spool.append(record(i), true));
            }
        }
        Path segment;
        try (Stream<Path> s = Files.list(dir)) {
            segment = s.findFirst().orElseThrow();
        }
        try (FileChannel ch = FileChannel.open(segment, StandardOpenOption.WRITE)) {
            // Flip one byte of the last payload: its length is right, its CRC is not.
            ch.write(ByteBuffer.wrap(new byte[] {'X'}), ch.size() - 1);
        }
        try (Spool spool = Spool.open(dir, 1 << 20, Duration.ofMillis(1))) {
            assertThat(spool.pendingRecords()).isEqualTo(2);
            assertThat(drain(spool)).containsExactly("event-0", "event-1");
        }
    }

    @Test
    void aFullSpoolRefuses_butAlreadyAcceptedEventsMayStillBeMovedIn() throws Exception {
        try (Spool spool = Spool.open(dir, 1024, Duration.ofMillis(1))) {
            int accepted = 0;
            try {
                for (int i = 0; i < 1_000; i++) {
                    spool.append(new byte[100], true);
                    accepted++;
                }
            } catch (EventSink.SpoolFullException e) {
                assertThat(e.getMessage()).contains("SPOOL_MAX_BYTES");
            }
            assertThat(accepted).isEqualTo(1024 / 108);
            assertThat(spool.isFull()).isTrue();
            spool.append(new byte[100], false);
            assertThat(spool.pendingRecords()).isEqualTo(accepted + 1);
        }
    }

    /** Group commit: concurrent appenders share fsyncs; prints the latency a spooled submit pays. */
    @Test
    void groupCommit_manyWritersShareFsyncs() throws Exception {
        int threads = 16;
        int perThread = 200;
        long[] latenciesNanos = new long[threads * perThread];
        try (Spool spool = Spool.open(dir, 64L << 20, Duration.ofMillis(2));
             ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int base = t * perThread;
                futures.add(pool.submit(() -> {
                    for (int i = 0; i < perThread; i++) {
                        long start = System.nanoTime();
                        spool.awaitDurable(spool.append(new byte[400], true));
                        latenciesNanos[base + i] = System.nanoTime() - start;
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
            assertThat(spool.pendingRecords()).isEqualTo((long) threads * perThread);
        }
        Arrays.sort(latenciesNanos);
        System.out.printf("spooled submit (append + group fsync, 16 writers, 2 ms interval): p50=%.2f ms p99=%.2f ms max=%.2f ms%n",
                latenciesNanos[latenciesNanos.length / 2] / 1e6, latenciesNanos[latenciesNanos.length * 99 / 100] / 1e6,
                latenciesNanos[latenciesNanos.length - 1] / 1e6);
    }

    /**
     * Issue 15: an empty spool's fsync thread sleeps until an append (it woke every interval, ~500 times a second, in
     * every edge whose events go straight to Kafka), and an append after the sleep is still made durable.
     */
    @Test
    void anIdleFlusherSleepsUntilAnAppendWakesIt() throws Exception {
        Set<Long> before = fsyncThreads();
        try (Spool spool = Spool.open(dir, 256 << 10, Duration.ofMillis(2))) {
            spool.awaitDurable(spool.append(record(1), true));
            Set<Long> ours = new HashSet<>(fsyncThreads());
            ours.removeAll(before);
            assertThat(ours).as("this spool's fsync thread").hasSize(1);
            long tid = ours.iterator().next();
            long start = voluntarySwitches(tid);
            // A 2 ms tick would wake it ~500 times in this second; asleep, it wakes once or twice at most.
            await("the idle flusher stays asleep for a second").during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(5))
                    .until(() -> voluntarySwitches(tid) - start < 20);
            long next = spool.append(record(2), true);
            try (ExecutorService waiter = Executors.newVirtualThreadPerTaskExecutor()) {
                Future<?> durable = waiter.submit(() -> spool.awaitDurable(next));
                await("an append after the sleep becomes durable").atMost(Duration.ofSeconds(10)).until(durable::isDone);
                durable.get();
            }
        }
    }

    /** Thread ids of this JVM's threads named spool-fsync (Linux: /proc/self/task/<tid>/comm). */
    private static Set<Long> fsyncThreads() throws Exception {
        Set<Long> tids = new HashSet<>();
        try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : tasks.toList()) {
                try {
                    if (Files.readString(t.resolve("comm")).strip().equals("spool-fsync")) {
                        tids.add(Long.parseLong(t.getFileName().toString()));
                    }
                } catch (java.io.IOException ended) {
                    // a thread that ended meanwhile
                }
            }
        }
        return tids;
    }

    private static long voluntarySwitches(long tid) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/task/" + tid + "/status"))) {
            if (line.startsWith("voluntary_ctxt_switches:")) {
                return Long.parseLong(line.substring(line.indexOf(':') + 1).strip());
            }
        }
        throw new IllegalStateException("no voluntary_ctxt_switches in the status of thread " + tid);
    }
}
