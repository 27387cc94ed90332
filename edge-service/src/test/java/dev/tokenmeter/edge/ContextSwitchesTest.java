package dev.tokenmeter.edge;

import dev.tokenmeter.edge.ContextSwitches.Counts;
import dev.tokenmeter.edge.ContextSwitches.Delta;
import dev.tokenmeter.edge.ContextSwitches.Tally;
import dev.tokenmeter.edge.ContextSwitches.Thread;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** EdgeBenchmark's context-switch accounting: /proc's status files read per thread, threads that end or start mid-phase. */
class ContextSwitchesTest {

    /** A thread's status file as Linux 6.x prints it (shortened). */
    private static String status(String name, long voluntary, long involuntary) {
        return "Name:\t" + name + "\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4250\nThreads:\t31\n"
                + "Cpus_allowed_list:\t0-1\nvoluntary_ctxt_switches:\t" + voluntary + "\nnonvoluntary_ctxt_switches:\t" + involuntary + "\n";
    }

    @Test
    void readsBothCountsAndTheNameOfAStatusFile() {
        String s = status("ForkJoinPool-1-", 123456, 789);
        assertThat(ContextSwitches.parseStatus(s)).isEqualTo(new Counts(123456, 789));
        assertThat(ContextSwitches.parseName(s)).isEqualTo("ForkJoinPool-1-");
        assertThat(ContextSwitches.parseStatus("Name:\tx\nState:\tZ (zombie)\n")).isNull();
    }

    @Test
    void groupsAPoolsThreadsByTheirNameWithoutDigits() {
        assertThat(ContextSwitches.threadGroup("qtp1234567-17")).isEqualTo("qtp#-#");
        assertThat(ContextSwitches.threadGroup("qtp7654321-3")).isEqualTo("qtp#-#");
        assertThat(ContextSwitches.threadGroup("lettuce-epollEv")).isEqualTo("lettuce-epollEv");
    }

    @Test
    void aThreadAliveThroughoutCountsItsGrowth() {
        Tally t = new Tally(Map.of(1L, new Thread("edge", new Counts(100, 10)), 2L, new Thread("worker", new Counts(50, 5))));
        t.observe(Map.of(1L, new Thread("edge", new Counts(130, 11)), 2L, new Thread("worker", new Counts(50, 5))));
        t.observe(Map.of(1L, new Thread("edge", new Counts(160, 12)), 2L, new Thread("worker", new Counts(70, 9))));
        Delta d = t.delta();
        assertThat(d.total()).isEqualTo(new Counts(80, 6));
        assertThat(d.byThreadGroup()).containsExactlyInAnyOrderEntriesOf(Map.of("edge", new Counts(60, 2), "worker", new Counts(20, 4)));
        assertThat(d.threadsEnded()).isZero();
        assertThat(d.threadsStarted()).isZero();
    }

    @Test
    void aThreadThatEndsCountsUpToItsLastReadingAndOneThatStartsFromZero() {
        Tally t = new Tally(Map.of(1L, new Thread("main", new Counts(10, 1)), 2L, new Thread("pool-#", new Counts(40, 0))));
        t.observe(Map.of(1L, new Thread("main", new Counts(12, 1)), 2L, new Thread("pool-#", new Counts(45, 2)),
                3L, new Thread("pool-#", new Counts(7, 1))));
        // thread 2 ended after that reading; thread 3 goes on
        t.observe(Map.of(1L, new Thread("main", new Counts(14, 1)), 3L, new Thread("pool-#", new Counts(9, 1))));
        Delta d = t.delta();
        assertThat(d.total()).isEqualTo(new Counts(4 + 5 + 9, 0 + 2 + 1));
        assertThat(d.byThreadGroup().get("pool-#")).isEqualTo(new Counts(5 + 9, 2 + 1));
        assertThat(d.threadsEnded()).isEqualTo(1);
        assertThat(d.threadsStarted()).isEqualTo(1);
    }

    @Test
    void aReusedThreadIdIsANewThread() {
        Tally t = new Tally(Map.of(5L, new Thread("old", new Counts(1000, 20))));
        t.observe(Map.of(5L, new Thread("old", new Counts(1010, 20))));
        // the id now belongs to a new thread: another name, counts from zero
        t.observe(Map.of(5L, new Thread("new", new Counts(3, 0))));
        // the same name, but counts lower than before: a new thread again
        t.observe(Map.of(5L, new Thread("new", new Counts(1, 1))));
        Delta d = t.delta();
        assertThat(d.byThreadGroup()).containsExactlyInAnyOrderEntriesOf(Map.of("old", new Counts(10, 0), "new", new Counts(3 + 1, 1)));
        assertThat(d.threadsEnded()).isEqualTo(2);
        assertThat(d.threadsStarted()).isEqualTo(2);
    }

    @Test
    void aProcessThatIsGoneReadsAsNoThreadsAndItsThreadsKeepTheirLastReading(@TempDir Path proc) throws IOException {
        task(proc, 4242, 4242, status("java", 5, 1));
        task(proc, 4242, 4250, status("lettuce-epollEv", 100, 3));
        Map<Long, Thread> start = ContextSwitches.read(proc, 4242);
        assertThat(start).containsOnlyKeys(4242L, 4250L);
        assertThat(start.get(4250L)).isEqualTo(new Thread("lettuce-epollEv", new Counts(100, 3)));

        Tally t = new Tally(start);
        task(proc, 4242, 4250, status("lettuce-epollEv", 160, 4));
        t.observe(ContextSwitches.read(proc, 4242));
        deleteTree(proc.resolve("4242"));
        Map<Long, Thread> gone = ContextSwitches.read(proc, 4242);
        assertThat(gone).isEmpty();
        t.observe(gone);
        assertThat(t.delta()).isEqualTo(new Delta(new Counts(60, 1), Map.of("java", new Counts(0, 0), "lettuce-epollEv", new Counts(60, 1)), 2, 0));
    }

    @Test
    void theSamplerSumsEachGroupsProcessesOverThePhase(@TempDir Path proc) throws Exception {
        task(proc, 100, 100, status("nginx", 1, 0));
        task(proc, 101, 101, status("nginx", 1000, 7));
        task(proc, 200, 200, status("redis-server", 500, 2));
        ContextSwitches.Sampler sampler = new ContextSwitches.Sampler(proc, Map.of("peer", List.of(100L, 101L), "redis", List.of(200L)));
        task(proc, 101, 101, status("nginx", 1300, 9));
        task(proc, 200, 200, status("redis-server", 800, 2));
        task(proc, 200, 201, status("io_thd_#", 40, 0));
        Map<String, Delta> d = sampler.stop();
        assertThat(d.get("peer").total()).isEqualTo(new Counts(300, 2));
        assertThat(d.get("redis").total()).isEqualTo(new Counts(340, 0));
        assertThat(d.get("redis").threadsStarted()).isEqualTo(1);
        assertThat(d.get("redis").byThreadGroup()).containsEntry("io_thd_#", new Counts(40, 0));
    }

    private static void task(Path proc, long pid, long tid, String status) throws IOException {
        Path dir = Files.createDirectories(proc.resolve(Long.toString(pid)).resolve("task").resolve(Long.toString(tid)));
        Files.writeString(dir.resolve("status"), status);
    }

    private static void deleteTree(Path root) throws IOException {
        try (var files = Files.walk(root)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
