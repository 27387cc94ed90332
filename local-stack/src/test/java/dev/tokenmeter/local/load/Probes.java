package dev.tokenmeter.local.load;

import io.lettuce.core.api.sync.RedisCommands;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * What the load program (issue 20) reads from outside a running stack, each probe one call that either answers or
 * throws: a process's resident memory and open file descriptors from {@code /proc} (Linux only), Redis' memory
 * from {@code INFO memory}, Postgres' connections in use from {@code pg_stat_activity}, a Kafka consumer group's lag
 * from its committed offsets and the partitions' latest offsets, and the bytes a directory (the edge's spool) holds.
 *
 * <p>Heap after GC ({@link #heapAfterFullGcBytes}) runs {@code jcmd <pid> GC.run} then {@code GC.heap_info}, the
 * commands a person would type: {@code GC.heap_info} alone reports the heap in use now (the allocation sawtooth),
 * and the heap after the last young collection still holds the tenured garbage a full collection would free, so
 * neither shows the live set whose growth is a leak. Forcing a full collection does; it costs the service one
 * stop-the-world pause (tens of ms on the stack's 384 MiB serial heaps), so the load program takes it once a minute.
 */
public final class Probes {

    private static final long TIMEOUT_SECONDS = 10;
    /**
     * A heap line of {@code GC.heap_info}: a generation or heap with a "total" ("def new generation", "DefNew",
     * "tenured generation", "Tenured", "garbage-first heap", by JDK and collector); Metaspace's and the spaces' lines
     * have none.
     */
    private static final Pattern HEAP_USED = Pattern.compile("^\\s*\\S.*?\\s+total\\b.*?used (\\d+)K", Pattern.MULTILINE);

    private Probes() {
    }

    /** {@code VmRSS} of {@code /proc/<pid>/status}, in bytes. */
    public static long rssBytes(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (line.startsWith("VmRSS:")) {
                    // "VmRSS:	  123456 kB": the kernel always reports kB
                    String[] f = line.substring("VmRSS:".length()).strip().split("\\s+");
                    return Long.parseLong(f[0]) * 1024;
                }
            }
            throw new IllegalStateException("no VmRSS line in /proc/" + pid + "/status (a kernel thread or a zombie?)");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/" + pid + "/status (process gone, or not Linux)", e);
        }
    }

    /**
     * The Java heap in use right after a full collection: {@code jcmd <pid> GC.run} (a {@code System.gc()}), then
     * {@code jcmd <pid> GC.heap_info}, in one jcmd invocation; the sum of its generations' "used", in bytes.
     */
    public static long heapAfterFullGcBytes(long pid) {
        Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        try {
            Path commands = Files.createTempFile("heap-probe", ".jcmd");
            try {
                Files.writeString(commands, "GC.run\nGC.heap_info\n");
                Process p = new ProcessBuilder(jcmd.toString(), Long.toString(pid), "-f", commands.toString())
                        .redirectErrorStream(true).start();
                String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
                if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    throw new IllegalStateException("jcmd " + pid + " did not finish in " + TIMEOUT_SECONDS + " s");
                }
                if (p.exitValue() != 0) {
                    throw new IllegalStateException("jcmd " + pid + " exited " + p.exitValue() + ": " + out.strip());
                }
                return parseHeapInfoUsedBytes(out);
            } finally {
                Files.deleteIfExists(commands);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + jcmd, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted waiting for jcmd " + pid, e);
        }
    }

    /** The sum of "used NK" over the heap lines of {@code GC.heap_info} output, in bytes. */
    static long parseHeapInfoUsedBytes(String heapInfo) {
        Matcher m = HEAP_USED.matcher(heapInfo);
        long kib = 0;
        int lines = 0;
        while (m.find()) {
            kib += Long.parseLong(m.group(1));
            lines++;
        }
        if (lines == 0) {
            throw new IllegalStateException("no heap line in GC.heap_info: " + heapInfo.lines().limit(5).toList());
        }
        return kib * 1024;
    }

    /** How many entries {@code /proc/<pid>/fd} has: the process's open file descriptors (sockets included). */
    public static long openFileDescriptors(long pid) {
        try (Stream<Path> fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return fds.count();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list /proc/" + pid + "/fd (process gone, another user's, or not Linux)", e);
        }
    }

    /** Redis' {@code used_memory} and {@code maxmemory} (0 = no limit), in bytes. */
    public record RedisMemory(long usedBytes, long maxBytes) {
    }

    public static RedisMemory redisMemory(RedisCommands<String, String> redis) {
        return parseRedisMemory(redis.info("memory"));
    }

    static RedisMemory parseRedisMemory(String info) {
        Map<String, String> fields = info.lines()
                .filter(l -> !l.startsWith("#") && l.indexOf(':') > 0)
                .collect(Collectors.toMap(l -> l.substring(0, l.indexOf(':')), l -> l.substring(l.indexOf(':') + 1).strip(),
                        (a, b) -> b));
        String used = fields.get("used_memory");
        String max = fields.get("maxmemory");
        if (used == null || max == null) {
            throw new IllegalStateException("INFO memory has no used_memory or maxmemory: " + fields.keySet());
        }
        return new RedisMemory(Long.parseLong(used), Long.parseLong(max));
    }

    /**
     * Client connections in use per {@code user/application_name} (application empty when the client set none), from
     * {@code pg_stat_activity}; the connection that asks counts too, under its own name. Seeing other users' rows
     * needs {@code pg_read_all_stats} or a superuser; without it Postgres still lists them, so the count holds.
     */
    public static Map<String, Long> postgresConnections(Connection connection) {
        String sql = "SELECT coalesce(usename, '') AS u, coalesce(application_name, '') AS a, count(*) AS n"
                + " FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2";
        Map<String, Long> byUserAndApp = new TreeMap<>();
        try (Statement st = connection.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            while (rs.next()) {
                byUserAndApp.put(rs.getString("u") + "/" + rs.getString("a"), rs.getLong("n"));
            }
        } catch (SQLException e) {
            throw new IllegalStateException("cannot read pg_stat_activity: " + e.getMessage(), e);
        }
        return byUserAndApp;
    }

    /**
     * A consumer group's lag per partition it has committed on: the partition's latest offset minus the committed
     * one (never below 0). Partitions the group never committed on are not listed: their lag is not defined until
     * the group's {@code auto.offset.reset} decides where it starts.
     */
    public static Map<TopicPartition, Long> consumerLag(Admin admin, String groupId) {
        try {
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(groupId)
                    .partitionsToOffsetAndMetadata().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            Map<TopicPartition, OffsetSpec> latestSpec = new TreeMap<>(Probes::comparePartitions);
            committed.forEach((tp, om) -> {
                if (om != null) {
                    latestSpec.put(tp, OffsetSpec.latest());
                }
            });
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> latest = latestSpec.isEmpty() ? Map.of()
                    : admin.listOffsets(latestSpec).all().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            Map<TopicPartition, Long> lag = new TreeMap<>(Probes::comparePartitions);
            latest.forEach((tp, info) -> lag.put(tp, Math.max(0, info.offset() - committed.get(tp).offset())));
            return lag;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted reading the lag of group " + groupId, e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("cannot read the lag of group " + groupId + ": " + e, e);
        }
    }

    /** The sum of {@link #consumerLag} over the group's partitions. */
    public static long totalConsumerLag(Admin admin, String groupId) {
        return consumerLag(admin, groupId).values().stream().mapToLong(Long::longValue).sum();
    }

    /**
     * Bytes of the regular files below {@code dir} (the edge's spool); 0 when it does not exist. Files that vanish
     * while it is walked (a segment the spool deletes) are skipped.
     */
    public static long directoryBytes(Path dir) {
        if (!Files.exists(dir)) {
            return 0;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            return files.mapToLong(Probes::sizeOrZero).sum();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot walk " + dir, e);
        }
    }

    private static long sizeOrZero(Path p) {
        try {
            return Files.isRegularFile(p) ? Files.size(p) : 0;
        } catch (NoSuchFileException gone) {
            return 0;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot size " + p, e);
        }
    }

    private static int comparePartitions(TopicPartition a, TopicPartition b) {
        int byTopic = a.topic().compareTo(b.topic());
        return byTopic != 0 ? byTopic : Integer.compare(a.partition(), b.partition());
    }
}
