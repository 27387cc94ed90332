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
 * <p>Heap after GC is not probed here: from outside a JVM it needs an agent, JMX or {@code jcmd}, and
 * {@code jcmd GC.heap_info} reports the heap in use now, not after the last collection, so it would chart the
 * allocation sawtooth rather than the live set. The services are the place to report it
 * ({@code MemoryPoolMXBean#getCollectionUsage}); until they do, RSS is the memory figure per JVM.
 */
public final class Probes {

    private static final long TIMEOUT_SECONDS = 10;

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
