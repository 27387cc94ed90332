package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.RollupPeriod;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageRollup;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import static dev.tokenmeter.aggregator.UsageAggregationTopologyTest.event;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Issue 17 (ADR 0078): the production topology's attribution rollups under TopologyTestDriver — per dimension value
 * and (all), (none) for an event without the label, the cap with (other) (an admitted value stays admitted),
 * duplicates counted once and taking no place of the cap, late events counted in their own day, and the
 * configuration's bounds. (TopologyTestDriver wipes its state on close, so a restart from the stores is not
 * exercised here.)
 */
class RollupTopologyTest {

    private final Topics topics = Topics.withPrefix("", 1);
    private final Path stateDir = Path.of(System.getProperty("java.io.tmpdir"), "ttd-rollups-" + UUID.randomUUID());
    private final AggregatorConfig config = AggregatorConfig.fromEnv(Map.of(
            "HOUR_GRACE", "10m", "MONTH_GRACE", "1d", "EMIT_INTERVAL", "1s", "DEDUP_RETENTION", "7d",
            "ROLLUP_DIMENSIONS", "feature, customer", "ROLLUP_MAX_VALUES_PER_USER", "2"));
    private TopologyTestDriver driver;
    private TestInputTopic<String, byte[]> events;
    private TestOutputTopic<String, UsageRollup> rollups;
    /** The latest rollup per key, as a consumer keeping the highest revision sees them. */
    private final Map<String, UsageRollup> latest = new HashMap<>();

    private void open() {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "aggregator-rollup-test");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        AggregatorMetrics metrics = new AggregatorMetrics(new SimpleMeterRegistry());
        props.putAll(AggregatorApp.processingFailureProperties(topics.deadLetter().name(), metrics));
        driver = new TopologyTestDriver(UsageAggregationTopology.build(config, topics, metrics), props);
        events = driver.createInputTopic(topics.usageEvents().name(), Serdes.String().serializer(), Serdes.ByteArray().serializer());
        rollups = driver.createOutputTopic(topics.rollups().name(), Serdes.String().deserializer(), EventSerdes.usageRollup().deserializer());
    }

    @AfterEach
    void close() {
        if (driver != null) {
            driver.close();
        }
    }

    @Test
    void valuesUpToTheCapThenOtherNoneForAMissingLabelAndEveryDimensionAddsUpToTheTotal() {
        open();
        send(labelled("alice", "2026-05-04T10:00:00Z", 100, Map.of("feature", "chat", "customer", "acme")));
        send(labelled("alice", "2026-05-04T11:00:00Z", 200, Map.of("feature", "search")));
        // A third feature value: past the cap of 2, so (other); customer is absent: (none).
        send(labelled("alice", "2026-05-05T09:00:00Z", 400, Map.of("feature", "summarize")));
        // An admitted value stays admitted after the cap is reached.
        send(labelled("alice", "2026-05-05T10:00:00Z", 800, Map.of("feature", "chat", "customer", "initech")));
        read();

        assertThat(month("alice", "feature", "chat").getCostNanoUsd()).isEqualTo(900);
        assertThat(month("alice", "feature", "search").getCostNanoUsd()).isEqualTo(200);
        assertThat(month("alice", "feature", Rollups.OTHER).getCostNanoUsd()).isEqualTo(400);
        assertThat(latest).doesNotContainKey(monthKey("alice", "feature", "summarize"));
        assertThat(month("alice", "customer", "acme").getCostNanoUsd()).isEqualTo(100);
        assertThat(month("alice", "customer", "initech").getCostNanoUsd()).isEqualTo(800);
        assertThat(month("alice", "customer", Rollups.NONE).getCostNanoUsd()).isEqualTo(600);
        assertThat(month("alice", Rollups.ALL, Rollups.ALL).getCostNanoUsd()).isEqualTo(1500);
        assertThat(month("alice", Rollups.ALL, Rollups.ALL).getEventCount()).isEqualTo(4);
        assertThat(month("alice", Rollups.ALL, Rollups.ALL).getProject()).isEqualTo("bot");
        for (String dimension : List.of(Rollups.ALL, "feature", "customer")) {
            assertThat(sum(dimension, RollupPeriod.MONTH)).as(dimension + " adds up to the month's total").isEqualTo(1500);
            assertThat(sum(dimension, RollupPeriod.DAY)).as(dimension + ": the days add up too").isEqualTo(1500);
        }
        UsageRollup may5Other = latest.get(Rollups.key("alice", "bot", "feature", Rollups.OTHER, RollupPeriod.DAY,
                Instant.parse("2026-05-05T00:00:00Z").toEpochMilli()));
        assertThat(may5Other.getCostNanoUsd()).isEqualTo(400);
        assertThat(may5Other.getPeriodEnd()).isEqualTo(Instant.parse("2026-05-06T00:00:00Z"));
        // Another user, another month: caps of their own.
        send(labelled("bob", "2026-05-05T09:00:00Z", 1, Map.of("feature", "summarize")));
        send(labelled("alice", "2026-06-01T00:00:00Z", 2, Map.of("feature", "summarize")));
        read();
        assertThat(month("bob", "feature", "summarize").getCostNanoUsd()).isEqualTo(1);
        assertThat(latest.get(Rollups.key("alice", "bot", "feature", "summarize", RollupPeriod.MONTH,
                Instant.parse("2026-06-01T00:00:00Z").toEpochMilli())).getCostNanoUsd()).isEqualTo(2);
    }

    @Test
    void duplicatesCountOnceAndTakeNoPlaceOfTheCap() {
        open();
        UsageEvent first = labelled("carol", "2026-05-04T10:00:00Z", 10, Map.of("feature", "a"));
        send(first);
        send(labelled("carol", "2026-05-04T10:01:00Z", 20, Map.of("feature", "b")));
        read();
        send(first); // a duplicate: dropped before any assignment, so it takes no place of the cap
        send(UsageEvent.newBuilder(first).setLabels(java.util.Map.of("feature", "z")).build()); // same id, other label
        send(labelled("carol", "2026-05-04T10:02:00Z", 40, Map.of("feature", "c")));
        send(labelled("carol", "2026-05-04T10:03:00Z", 80, Map.of("feature", "b")));
        read();
        assertThat(month("carol", "feature", "a").getCostNanoUsd()).isEqualTo(10);
        assertThat(month("carol", "feature", "a").getEventCount()).isEqualTo(1);
        assertThat(month("carol", "feature", "b").getCostNanoUsd()).isEqualTo(100);
        assertThat(month("carol", "feature", Rollups.OTHER).getCostNanoUsd()).isEqualTo(40);
        assertThat(month("carol", Rollups.ALL, Rollups.ALL).getCostNanoUsd()).isEqualTo(150);
        assertThat(month("carol", Rollups.ALL, Rollups.ALL).getRevision()).isEqualTo(4);
    }

    @Test
    void aLateEventCountsInItsOwnDay() {
        open();
        send(labelled("dave", "2026-05-10T12:00:00Z", 5, Map.of("feature", "chat")));
        // Three days late, past every grace of the hour: still counted in its day and month.
        send(labelled("dave", "2026-05-07T08:00:00Z", 7, Map.of("feature", "chat")));
        read();
        assertThat(latest.get(Rollups.key("dave", "bot", "feature", "chat", RollupPeriod.DAY,
                Instant.parse("2026-05-07T00:00:00Z").toEpochMilli())).getCostNanoUsd()).isEqualTo(7);
        assertThat(month("dave", "feature", "chat").getCostNanoUsd()).isEqualTo(12);
    }

    @Test
    void theDimensionsAreValidatedAtStartUp() {
        assertThat(AggregatorConfig.defaults().rollupDimensions()).isEmpty();
        assertThat(AggregatorConfig.defaults().rollupMaxValuesPerUser()).isEqualTo(100);
        assertThat(AggregatorConfig.fromEnv(Map.of("ROLLUP_DIMENSIONS", "a,b,c")).rollupDimensions()).containsExactly("a", "b", "c");
        for (String bad : List.of("a,b,c,d", "a,a", "Feature", "a,,b", "1a", "x".repeat(33))) {
            assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("ROLLUP_DIMENSIONS", bad))).as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("ROLLUP_DIMENSIONS must be at most 3 distinct label keys");
        }
        assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("ROLLUP_MAX_VALUES_PER_USER", "0")))
                .hasMessageContaining("ROLLUP_MAX_VALUES_PER_USER");
    }

    private static UsageEvent labelled(String user, String at, long cost, Map<String, String> labels) {
        return UsageEvent.newBuilder(event(user, at, cost)).setProject("bot").setLabels(labels).build();
    }

    private void send(UsageEvent e) {
        events.pipeInput(e.getUserId(), EventSerdes.usageEvent().encode(e), e.getOccurredAt());
    }

    private void read() {
        rollups.readKeyValuesToList().forEach(kv -> latest.merge(kv.key, kv.value,
                (a, b) -> a.getRevision() >= b.getRevision() ? a : b));
    }

    private static String monthKey(String user, String dimension, String value) {
        return Rollups.key(user, "bot", dimension, value, RollupPeriod.MONTH, Instant.parse("2026-05-01T00:00:00Z").toEpochMilli());
    }

    private UsageRollup month(String user, String dimension, String value) {
        UsageRollup r = latest.get(monthKey(user, dimension, value));
        assertThat(r).as("rollup " + monthKey(user, dimension, value)).isNotNull();
        return r;
    }

    private long sum(String dimension, RollupPeriod period) {
        return latest.values().stream()
                .filter(r -> r.getUserId().equals("alice") && r.getDimension().equals(dimension) && r.getPeriod() == period
                        && r.getPeriodStart().isBefore(Instant.parse("2026-06-01T00:00:00Z")))
                .mapToLong(UsageRollup::getCostNanoUsd).sum();
    }
}
