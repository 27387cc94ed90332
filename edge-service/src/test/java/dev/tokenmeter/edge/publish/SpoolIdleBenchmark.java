package dev.tokenmeter.edge.publish;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The idle cost of a spool's fsync thread (issue 15) — not a test. Opens an empty spool with the default 2 ms group-commit
 * interval, as every edge whose events go straight to Kafka has one, and prints its fsync thread's voluntary context
 * switches and CPU per second over {@code seconds} (default 10), from {@code /proc/self/task/<tid>} (Linux). Run on
 * two builds (e.g. with each build's {@code edge-service-*-all.jar} on the class path) to compare them:
 * {@code bin/benchmark edge-service dev.tokenmeter.edge.publish.SpoolIdleBenchmark 10}.
 */
public final class SpoolIdleBenchmark {

    private SpoolIdleBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        if (seconds <= 0 || seconds > 300) {
            throw new IllegalArgumentException("seconds 1..300");
        }
        Path dir = Files.createTempDirectory("spool-idle");
        try (Spool spool = Spool.open(dir, 1 << 20, Duration.ofMillis(2))) {
            Path task = null;
            for (int i = 0; i < 100 && task == null; i++) {
                try (var tasks = Files.list(Path.of("/proc/self/task"))) {
                    for (Path t : tasks.toList()) {
                        if (Files.readString(t.resolve("comm")).strip().equals("spool-fsync")) {
                            task = t;
                        }
                    }
                }
            }
            if (task == null) {
                throw new IllegalStateException("no spool-fsync thread in /proc/self/task");
            }
            long[] before = read(task);
            long t0 = System.nanoTime();
            Thread.sleep(seconds * 1000L); // a fixed observation window: the quantity measured is what happens in it
            long[] after = read(task);
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.printf("idle spool-fsync thread over %.1f s: %.1f voluntary switches/s, CPU %.2f ms/s (USER_HZ ticks)%n",
                    s, (after[0] - before[0]) / s, (after[1] - before[1]) * 10.0 / s);
        }
    }

    /** {voluntary switches, utime + stime in ticks} of one thread. */
    private static long[] read(Path task) throws Exception {
        long voluntary = 0;
        for (String line : Files.readAllLines(task.resolve("status"))) {
            if (line.startsWith("voluntary_ctxt_switches:")) {
                voluntary = Long.parseLong(line.substring(line.indexOf(':') + 1).strip());
            }
        }
        String stat = Files.readString(task.resolve("stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return new long[] {voluntary, Long.parseLong(f[11]) + Long.parseLong(f[12])};
    }
}
