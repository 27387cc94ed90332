package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageRollup;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.processor.StateStore;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Issue 18's "memory per active user-month": what the production topology keeps in its state stores for a given
 * number of active (user, model, key source) totals, and how that moves when the same totals receive 10× the events.
 *
 * <p>Runs the production topology under TopologyTestDriver (persistent RocksDB stores, as in production; no broker:
 * sizes, not speed, are measured). {@code users × models × 2 key sources} totals receive {@code eventsPerTotal}
 * events each, spread evenly over {@code hours} hours of stream time in one calendar month; then every store is read
 * back and its entries and key + value bytes (as serialized into RocksDB and the changelog) are summed. The dedup
 * stores hold one entry per event id for DEDUP_RETENTION (7 days) and are reported apart: they grow with the event
 * rate, every other store with the active totals. Logical bytes, as written; RocksDB adds its own overhead and
 * compression on disk.
 *
 * <p>{@code retention} is CLOSED_TOTALS_RETENTION (default 35d): with {@code hours} beyond it the totals store holds the
 * hours of the retention window only (ADR 0091).
 *
 * <pre>bin/benchmark aggregator-streams dev.tokenmeter.aggregator.AggregatorStateBenchmark [users=1000] [models=4] [hours=3] [events=10,100] [retention=35d]</pre>
 */
public final class AggregatorStateBenchmark {

    private static final Instant START = Instant.parse("2026-05-04T08:00:00Z");

    private AggregatorStateBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        Map<String, String> a = new TreeMap<>();
        for (String arg : args) {
            String[] kv = arg.split("=", 2);
            a.put(kv[0], kv.length > 1 ? kv[1] : "");
        }
        int users = Integer.parseInt(a.getOrDefault("users", "1000"));
        int models = Integer.parseInt(a.getOrDefault("models", "4"));
        int hours = Integer.parseInt(a.getOrDefault("hours", "3"));
        List<Integer> eventCounts = Stream.of(a.getOrDefault("events", "10,100").split(",")).map(Integer::parseInt).toList();
        String retention = a.getOrDefault("retention", "35d");
        System.out.printf(Locale.ROOT, "%d users x %d models x 2 key sources = %d totals per month, over %d h of stream time,"
                + " CLOSED_TOTALS_RETENTION %s%n", users, models, users * models * 2, hours, retention);
        for (int eventsPerTotal : eventCounts) {
            run(users, models, hours, eventsPerTotal, retention);
        }
    }

    private static void run(int users, int models, int hours, int eventsPerTotal, String retention) throws IOException {
        Topics topics = Topics.withPrefix("", 1);
        AggregatorConfig config = AggregatorConfig.fromEnv(Map.of("CLOSED_TOTALS_RETENTION", retention));
        Path stateDir = Files.createTempDirectory("aggregator-state-bench");
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "aggregator-state-bench");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        int totals = users * models * 2;
        long events = (long) totals * eventsPerTotal;
        long stepNanos = Duration.ofHours(hours).toNanos() / events;
        long t0 = System.nanoTime();
        try (TopologyTestDriver driver = new TopologyTestDriver(UsageAggregationTopology.build(config, topics), props)) {
            TestInputTopic<String, byte[]> in = driver.createInputTopic(topics.usageEvents().name(),
                    Serdes.String().serializer(), Serdes.ByteArray().serializer());
            for (long i = 0; i < events; i++) {
                int total = (int) (i % totals);
                String user = "user-" + (total / (models * 2));
                String model = "model-" + (total / 2 % models);
                KeySource source = total % 2 == 0 ? KeySource.SERVICE_CREDIT : KeySource.PERSONAL_KEY;
                Instant at = START.plusNanos(i * stepNanos);
                UsageEvent e = UsageEvent.newBuilder()
                        .setEventId(UUID.randomUUID().toString())
                        .setOccurredAt(at).setReceivedAt(at.plusMillis(250))
                        .setTenantId("t1").setUserId(user).setKeySource(source)
                        .setModel(model).setEndpoint("/v1/chat/completions")
                        .setOutcome(Outcome.SUCCEEDED).setHttpStatus(200)
                        .setPromptTokens(120).setCompletionTokens(40).setCostNanoUsd(42_000)
                        .build();
                in.pipeInput(user, EventSerdes.usageEvent().encode(e), at);
                if (i % 1_000 == 0) {
                    driver.advanceWallClockTime(Duration.ofSeconds(2)); // emit, as EMIT_INTERVAL would
                }
            }
            driver.advanceWallClockTime(Duration.ofSeconds(2));
            long dedupEntries = 0;
            long dedupBytes = 0;
            long otherEntries = 0;
            long otherBytes = 0;
            System.out.printf(Locale.ROOT, "%n%d events per total (%,d events, %.1f s):%n", eventsPerTotal, events,
                    (System.nanoTime() - t0) / 1e9);
            System.out.printf(Locale.ROOT, "  %-28s %12s %14s %10s%n", "store", "entries", "key+value B", "B/entry");
            for (Map.Entry<String, StateStore> s : new TreeMap<>(driver.getAllStateStores()).entrySet()) {
                long[] size = size(driver.getKeyValueStore(s.getKey()));
                System.out.printf(Locale.ROOT, "  %-28s %,12d %,14d %10s%n", s.getKey(), size[0], size[1],
                        size[0] == 0 ? "-" : Long.toString(size[1] / size[0]));
                if (s.getKey().startsWith("dedup-event-ids-")) {
                    dedupEntries += size[0];
                    dedupBytes += size[1];
                } else {
                    otherEntries += size[0];
                    otherBytes += size[1];
                }
            }
            System.out.printf(Locale.ROOT, "  totals and the rest: %,d entries, %,d B = %.0f B per active user-month total"
                    + " (user, model, key source)%n", otherEntries, otherBytes, (double) otherBytes / totals);
            System.out.printf(Locale.ROOT, "  dedup: %,d entries, %,d B = %.0f B per event id kept (DEDUP_RETENTION %s)%n",
                    dedupEntries, dedupBytes, dedupEntries == 0 ? 0.0 : (double) dedupBytes / dedupEntries, "7d");
        }
        deleteTree(stateDir);
    }

    /** Entries and key + value bytes (UTF-8 keys, serialized values as stored) of one key-value store. */
    @SuppressWarnings({"unchecked", "rawtypes"})
    private static long[] size(KeyValueStore store) {
        long entries = 0;
        long bytes = 0;
        try (KeyValueIterator<Object, Object> it = store.all()) {
            while (it.hasNext()) {
                KeyValue<Object, Object> kv = it.next();
                entries++;
                bytes += serializedSize(kv.key) + serializedSize(kv.value);
            }
        }
        return new long[] {entries, bytes};
    }

    private static long serializedSize(Object o) {
        if (o instanceof String s) {
            return s.getBytes(StandardCharsets.UTF_8).length;
        }
        if (o instanceof Long) {
            return Long.BYTES;
        }
        if (o instanceof RunningTotal t) {
            return RunningTotal.SERDE.serializer().serialize("", t).length;
        }
        if (o instanceof UsageRollup r) {
            return EventSerdes.usageRollup().serializer().serialize("", r).length;
        }
        throw new IllegalStateException("no size for a " + o.getClass());
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
