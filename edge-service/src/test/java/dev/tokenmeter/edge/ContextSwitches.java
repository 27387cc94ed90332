package dev.tokenmeter.edge;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * Context switches of {@link EdgeBenchmark}'s processes during a phase, summed over their threads, from
 * {@code /proc/<pid>/task/<tid>/status} ({@code voluntary_ctxt_switches}: the thread blocked — parked, waited in
 * {@code epoll_wait}, read a socket with nothing in it — and was switched out; {@code nonvoluntary_ctxt_switches}: it
 * was preempted while runnable). A voluntary switch is one later wake-up: handing a call from one thread to another
 * costs one on the receiving side each time it had gone to sleep, so voluntary switches per call count the call's
 * hand-offs (ADR 0065), and a one-thread event loop such as nginx's worker pays only the waits for the network.
 *
 * <p>{@code /proc/<pid>/status} alone holds the main thread's counts only, and the kernel keeps no per-process sum
 * readable from outside (the exited threads' counts go into the process's rusage, which only the process itself and
 * its parent can read). So each thread is read on its own, at the phase's start, every {@code SAMPLE_MILLIS} during it
 * ({@link Sampler}) and at its end; a thread counts with its last seen counts minus those at the start (0 for a thread
 * that started during the phase). A thread that ended during the phase therefore counts up to its last sample: what it
 * did between that sample and its end is lost, and a thread that both started and ended between two samples is not
 * seen at all. {@link Delta} says how many threads ended and started, so a phase where that happens is visible; a thread
 * id that comes back under another name, or with lower counts, is a new thread (the kernel reused the id).
 */
final class ContextSwitches {

    static final long SAMPLE_MILLIS = 500;

    private ContextSwitches() {
    }

    /** Voluntary and involuntary switches. */
    record Counts(long voluntary, long involuntary) {

        static final Counts ZERO = new Counts(0, 0);

        Counts plus(Counts o) {
            return new Counts(voluntary + o.voluntary, involuntary + o.involuntary);
        }

        Counts minus(Counts o) {
            return new Counts(voluntary - o.voluntary, involuntary - o.involuntary);
        }

        long total() {
            return voluntary + involuntary;
        }
    }

    /** One thread as read: its name (the kernel's {@code comm}, at most 15 characters) and counts. */
    record Thread(String name, Counts counts) {
    }

    /** The switches of one process group over a phase. */
    record Delta(Counts total, Map<String, Counts> byThreadGroup, int threadsEnded, int threadsStarted) {

        static final Delta NONE = new Delta(Counts.ZERO, Map.of(), 0, 0);

        Delta plus(Delta o) {
            Map<String, Counts> groups = new TreeMap<>(byThreadGroup);
            o.byThreadGroup.forEach((g, c) -> groups.merge(g, c, Counts::plus));
            return new Delta(total.plus(o.total), groups, threadsEnded + o.threadsEnded, threadsStarted + o.threadsStarted);
        }
    }

    /**
     * The counts of a {@code status} file's text; {@code null} when it has none (a kernel without them, or a thread
     * that ended while its file was read).
     */
    static Counts parseStatus(String status) {
        long voluntary = -1;
        long involuntary = -1;
        for (String line : status.split("\n")) {
            if (line.startsWith("voluntary_ctxt_switches:")) {
                voluntary = Long.parseLong(line.substring(line.indexOf(':') + 1).strip());
            } else if (line.startsWith("nonvoluntary_ctxt_switches:")) {
                involuntary = Long.parseLong(line.substring(line.indexOf(':') + 1).strip());
            }
        }
        return voluntary < 0 || involuntary < 0 ? null : new Counts(voluntary, involuntary);
    }

    /** The {@code Name:} line of a {@code status} file (the thread's {@code comm}), or "?". */
    static String parseName(String status) {
        for (String line : status.split("\n")) {
            if (line.startsWith("Name:")) {
                return line.substring(line.indexOf(':') + 1).strip();
            }
        }
        return "?";
    }

    /**
     * The group a thread's name belongs to: its digits replaced by {@code #}, so that a pool's threads
     * ({@code ForkJoinPool-1-} for the virtual threads' carriers, {@code qtp12345-17}, {@code lettuce-epollEv}) add up.
     */
    static String threadGroup(String name) {
        return name.replaceAll("[0-9]+", "#");
    }

    /** The threads of process {@code pid} under {@code proc} (normally {@code /proc}) by thread id; empty once it is gone. */
    static Map<Long, Thread> read(Path proc, long pid) {
        Map<Long, Thread> threads = new HashMap<>();
        try (Stream<Path> tasks = Files.list(proc.resolve(Long.toString(pid)).resolve("task"))) {
            for (Path task : tasks.toList()) {
                try {
                    String status = Files.readString(task.resolve("status"));
                    Counts c = parseStatus(status);
                    if (c != null) {
                        threads.put(Long.parseLong(task.getFileName().toString()), new Thread(parseName(status), c));
                    }
                } catch (IOException | RuntimeException ended) {
                    // the thread ended between the listing and the read: it keeps its last sample
                }
            }
        } catch (NoSuchFileException gone) {
            // the process ended
        } catch (IOException | RuntimeException gone) {
            // the process ended while being listed
        }
        return threads;
    }

    /**
     * The accounting of one process over a phase: the threads at the start, then every later reading of the same
     * process ({@link #observe}), then {@link #delta}.
     */
    static final class Tally {
        /** One thread over the phase: its counts at the start (zero when it started later) and at its last reading. */
        private static final class Track {
            final boolean fromStart;
            final Counts first;
            Thread last;

            Track(boolean fromStart, Counts first, Thread last) {
                this.fromStart = fromStart;
                this.first = first;
                this.last = last;
            }
        }

        private final Map<Long, Track> live = new HashMap<>();
        /** Threads no longer read (ended), or whose id a new thread took. */
        private final List<Track> ended = new ArrayList<>();

        Tally(Map<Long, Thread> start) {
            start.forEach((tid, t) -> live.put(tid, new Track(true, t.counts(), t)));
        }

        void observe(Map<Long, Thread> now) {
            for (Iterator<Map.Entry<Long, Track>> it = live.entrySet().iterator(); it.hasNext(); ) {
                Map.Entry<Long, Track> e = it.next();
                Thread t = now.get(e.getKey());
                Track track = e.getValue();
                if (t == null) {
                    ended.add(track);
                    it.remove();
                } else if (!t.name().equals(track.last.name()) || t.counts().voluntary() < track.last.counts().voluntary()
                        || t.counts().involuntary() < track.last.counts().involuntary()) {
                    ended.add(track); // the id was reused by a new thread
                    e.setValue(new Track(false, Counts.ZERO, t));
                } else {
                    track.last = t;
                }
            }
            now.forEach((tid, t) -> live.computeIfAbsent(tid, k -> new Track(false, Counts.ZERO, t)));
        }

        /** Each thread's last reading minus its start, summed in total and by {@link #threadGroup}. */
        Delta delta() {
            Counts total = Counts.ZERO;
            Map<String, Counts> groups = new TreeMap<>();
            int started = 0;
            for (Track track : Stream.concat(live.values().stream(), ended.stream()).toList()) {
                Counts d = track.last.counts().minus(track.first);
                total = total.plus(d);
                groups.merge(threadGroup(track.last.name()), d, Counts::plus);
                if (!track.fromStart) {
                    started++;
                }
            }
            return new Delta(total, groups, ended.size(), started);
        }
    }

    /**
     * Reads the threads of every process of every group at the start, every {@link #SAMPLE_MILLIS} on a daemon thread of
     * its own, and at {@link #stop}. Its readings cost this (the load generator's) JVM a little CPU.
     */
    static final class Sampler {
        private final Path proc;
        private final Map<String, List<Long>> groups;
        private final Map<Long, Tally> tallies = new LinkedHashMap<>();
        private final java.lang.Thread thread;
        private volatile boolean running = true;

        Sampler(Path proc, Map<String, List<Long>> groups) {
            this.proc = proc;
            this.groups = groups;
            groups.values().forEach(pids -> pids.forEach(pid -> tallies.put(pid, new Tally(read(proc, pid)))));
            this.thread = java.lang.Thread.ofPlatform().daemon().name("bench-switch-sampler").start(this::loop);
        }

        private void loop() {
            while (running) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(SAMPLE_MILLIS));
                if (running) {
                    sample();
                }
            }
        }

        private synchronized void sample() {
            tallies.forEach((pid, tally) -> tally.observe(read(proc, pid)));
        }

        /** Takes the last reading and returns each group's switches over the phase. */
        Map<String, Delta> stop() throws InterruptedException {
            running = false;
            LockSupport.unpark(thread);
            thread.join();
            sample();
            Map<String, Delta> out = new LinkedHashMap<>();
            groups.forEach((g, pids) -> out.put(g, pids.stream().map(pid -> tallies.get(pid).delta()).reduce(Delta.NONE, Delta::plus)));
            return out;
        }
    }
}
