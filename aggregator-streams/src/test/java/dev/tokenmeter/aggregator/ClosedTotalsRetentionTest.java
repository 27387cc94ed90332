package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.test.TestRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * ADR 0091: a final total is kept CLOSED_TOTALS_RETENTION after its period closed, for late corrections, and then
 * removed, so the state holds the retention window's totals, not every hour ever; an event for a removed period is
 * dead-lettered whole with its reason (the ledger bills it; the totals never restart from zero).
 */
class ClosedTotalsRetentionTest {

    private final Topics topics = Topics.withPrefix("", 1);
    private final AggregatorConfig config = AggregatorConfig.fromEnv(Map.of(
            "HOUR_GRACE", "10m", "MONTH_GRACE", "1d", "EMIT_INTERVAL", "1s", "DEDUP_RETENTION", "7d",
            "CLOSED_TOTALS_RETENTION", "1d"));
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private TopologyTestDriver driver;
    private TestInputTopic<String, byte[]> events;
    private TestOutputTopic<String, UsageTotal> hourly;
    private TestOutputTopic<String, UsageTotal> monthly;
    private TestOutputTopic<String, UsageTotal> finals;
    private TestOutputTopic<String, byte[]> late;
    private TestOutputTopic<String, byte[]> dlq;

    @BeforeEach
    void start() {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "aggregator-retention-test");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, System.getProperty("java.io.tmpdir") + "/ttd-" + UUID.randomUUID());
        AggregatorMetrics metrics = new AggregatorMetrics(registry);
        props.putAll(AggregatorApp.processingFailureProperties(topics.deadLetter().name(), metrics));
        driver = new TopologyTestDriver(UsageAggregationTopology.build(config, topics, metrics), props);
        events = driver.createInputTopic(topics.usageEvents().name(), Serdes.String().serializer(), Serdes.ByteArray().serializer());
        hourly = driver.createOutputTopic(topics.hourlyTotals().name(), Serdes.String().deserializer(), EventSerdes.usageTotal().deserializer());
        monthly = driver.createOutputTopic(topics.monthlyTotals().name(), Serdes.String().deserializer(), EventSerdes.usageTotal().deserializer());
        finals = driver.createOutputTopic(topics.finalTotals().name(), Serdes.String().deserializer(), EventSerdes.usageTotal().deserializer());
        late = driver.createOutputTopic(topics.lateEvents().name(), Serdes.String().deserializer(), Serdes.ByteArray().deserializer());
        dlq = driver.createOutputTopic(topics.deadLetter().name(), Serdes.String().deserializer(), Serdes.ByteArray().deserializer());
    }

    @AfterEach
    void stop() {
        driver.close();
    }

    @Test
    void aFinalTotalTakesCorrectionsWithinTheRetentionAndIsRemovedAfterIt() {
        String hour10 = hourKey("alice", "2026-05-04T10:00:00Z");
        send(UsageAggregationTopologyTest.event("alice", "2026-05-04T10:30:00Z", 1));
        send(UsageAggregationTopologyTest.event("alice", "2026-05-04T12:00:00Z", 2)); // closes 10:00 (11:10)
        emit();
        assertThat(finalOf(hour10)).as("hour 10 closed").isNotNull();

        send(UsageAggregationTopologyTest.event("alice", "2026-05-04T10:45:00Z", 4)); // late, within the retention
        emit();
        assertThat(last(finals.readValuesToList()).getCostNanoUsd()).as("a late correction of the final total").isEqualTo(5);
        assertThat(late.readValuesToList()).hasSize(1);
        assertThat(totalsStore().get(hour10)).as("kept while within CLOSED_TOTALS_RETENTION").isNotNull();

        // Stream time one retention past hour 10's close (2026-05-04T11:10 + 1d): its total is removed.
        send(UsageAggregationTopologyTest.event("alice", "2026-05-05T11:30:00Z", 8));
        emit();
        assertThat(totalsStore().get(hour10)).as("removed one retention after it closed").isNull();
        assertThat(totalsStore().get(hourKey("alice", "2026-05-04T12:00:00Z")))
                .as("hour 12 closed at 13:10, within the retention still").isNotNull();
        assertThat(registry.counter("aggregator_totals_forgotten").count()).isEqualTo(1);
        long monthBefore = last(monthly.readValuesToList()).getCostNanoUsd();
        assertThat(monthBefore).isEqualTo(15);
        dlq.readRecordsToList();
        hourly.readValuesToList();
        finals.readValuesToList();

        // An event for the removed hour: set aside whole, with its reason; nothing counts it twice or from zero.
        UsageEvent tooLate = UsageAggregationTopologyTest.event("alice", "2026-05-04T10:50:00Z", 16);
        send(tooLate);
        send(UsageAggregationTopologyTest.event("alice", "2026-05-05T11:40:00Z", 32)); // the next event still counts
        emit();
        List<TestRecord<String, byte[]>> dead = dlq.readRecordsToList();
        assertThat(dead).singleElement().satisfies(r -> {
            assertThat(EventSerdes.usageEvent().decode(r.value())).isEqualTo(tooLate);
            assertThat(header(r, DeadLetters.ERROR)).startsWith("too late for the totals")
                    .contains("2026-05-04T10:00:00Z").contains("CLOSED_TOTALS_RETENTION").contains("ledger");
        });
        assertThat(registry.counter("aggregator_too_late_for_totals").count()).isEqualTo(1);
        assertThat(last(monthly.readValuesToList()).getCostNanoUsd()).as("the month: only the event after it").isEqualTo(47);
        assertThat(hourly.readValuesToList()).noneMatch(t -> t.getPeriodStart().equals(Instant.parse("2026-05-04T10:00:00Z")));
        assertThat(finals.readValuesToList()).noneMatch(t -> t.getPeriodStart().equals(Instant.parse("2026-05-04T10:00:00Z")));
        assertThat(totalsStore().get(hour10)).as("not started again").isNull();
    }

    @Test
    void theStateHoldsTheRetentionWindowNotEveryHourEver() {
        // One event an hour for 5 days, one retention (1 day) kept: hourly totals of ~1 day + 1 h, and the month.
        Instant t = Instant.parse("2026-05-01T00:30:00Z");
        for (int h = 0; h < 5 * 24; h++) {
            send(UsageAggregationTopologyTest.event("bo", t.plus(Duration.ofHours(h)).toString(), 1));
            emit();
        }
        List<String> hours = new ArrayList<>();
        try (KeyValueIterator<String, RunningTotal> it = totalsStore().all()) {
            it.forEachRemaining(kv -> {
                if (kv.key.contains("|" + Granularity.HOUR + "|")) {
                    hours.add(kv.key);
                }
            });
        }
        assertThat(hours).as("hours of the last retention (1 d + grace), not all 120").hasSizeBetween(24, 27);
        assertThat(last(monthly.readValuesToList()).getCostNanoUsd()).as("the month still counts every hour").isEqualTo(120);
    }

    @Test
    void aRetentionUnderAnHourIsRefused() {
        assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("CLOSED_TOTALS_RETENTION", "30m")))
                .hasMessageContaining("CLOSED_TOTALS_RETENTION");
    }

    private KeyValueStore<String, RunningTotal> totalsStore() {
        return driver.getKeyValueStore(UsageAggregationTopology.STORE_TOTALS);
    }

    private UsageTotal finalOf(String key) {
        return finals.readKeyValuesToList().stream().filter(kv -> kv.key.equals(key)).map(kv -> kv.value)
                .reduce((a, b) -> b).orElse(null);
    }

    private static String hourKey(String user, String hourStart) {
        return UsageAggregationProcessor.totalKey(user, "gpt-4o-mini", KeySource.SERVICE_CREDIT, Granularity.HOUR,
                Instant.parse(hourStart).toEpochMilli());
    }

    private void send(UsageEvent e) {
        events.pipeInput(e.getUserId(), EventSerdes.usageEvent().encode(e), e.getOccurredAt());
    }

    private void emit() {
        driver.advanceWallClockTime(Duration.ofSeconds(2));
    }

    private static UsageTotal last(List<UsageTotal> totals) {
        assertThat(totals).isNotEmpty();
        return totals.get(totals.size() - 1);
    }

    private static String header(TestRecord<String, byte[]> record, String name) {
        Header h = record.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }
}
