package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.UserLimit;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.test.TestRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/** The production topology under TopologyTestDriver: window edges, months, duplicates, lateness, alerts, poison pills. */
class UsageAggregationTopologyTest {

    private final Topics topics = Topics.withPrefix("", 1);
    private final AggregatorConfig config = AggregatorConfig.fromEnv(Map.of(
            "HOUR_GRACE", "10m", "MONTH_GRACE", "1d", "EMIT_INTERVAL", "1s", "DEDUP_RETENTION", "7d"));
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final AggregatorMetrics metrics = new AggregatorMetrics(registry);
    private TopologyTestDriver driver;
    private TestInputTopic<String, byte[]> events;
    private TestInputTopic<String, UserLimit> limits;
    private TestOutputTopic<String, UsageTotal> hourly;
    private TestOutputTopic<String, UsageTotal> monthly;
    private TestOutputTopic<String, UsageTotal> finals;
    private TestOutputTopic<String, byte[]> late;
    private TestOutputTopic<String, UsageAlert> alerts;
    private TestOutputTopic<String, byte[]> dlq;

    @BeforeEach
    void start() {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "aggregator-test");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, System.getProperty("java.io.tmpdir") + "/ttd-" + UUID.randomUUID());
        // The production processing-failure handler, as AggregatorApp configures it.
        props.putAll(AggregatorApp.processingFailureProperties(topics.deadLetter().name(), metrics));
        driver = new TopologyTestDriver(UsageAggregationTopology.build(config, topics, metrics), props);
        events = driver.createInputTopic(topics.usageEvents().name(), Serdes.String().serializer(), Serdes.ByteArray().serializer());
        limits = driver.createInputTopic(topics.userLimits().name(), Serdes.String().serializer(), EventSerdes.userLimit().serializer());
        hourly = driver.createOutputTopic(topics.hourlyTotals().name(), Serdes.String().deserializer(), EventSerdes.usageTotal().deserializer());
        monthly = driver.createOutputTopic(topics.monthlyTotals().name(), Serdes.String().deserializer(), EventSerdes.usageTotal().deserializer());
        finals = driver.createOutputTopic(topics.finalTotals().name(), Serdes.String().deserializer(), EventSerdes.usageTotal().deserializer());
        late = driver.createOutputTopic(topics.lateEvents().name(), Serdes.String().deserializer(), Serdes.ByteArray().deserializer());
        alerts = driver.createOutputTopic(topics.alerts().name(), Serdes.String().deserializer(), EventSerdes.usageAlert().deserializer());
        dlq = driver.createOutputTopic(topics.deadLetter().name(), Serdes.String().deserializer(), Serdes.ByteArray().deserializer());
    }

    @AfterEach
    void stop() {
        driver.close();
    }

    @Test
    void hourEdgeSplitsAtTheLastMillisecond() {
        send(event("alice", "2026-05-04T10:59:59.999Z", 100));
        send(event("alice", "2026-05-04T11:00:00.000Z", 10));
        emit();
        Map<Long, UsageTotal> byHour = latestByPeriod(hourly.readValuesToList());
        assertThat(byHour.get(Instant.parse("2026-05-04T10:00:00Z").toEpochMilli()).getCostNanoUsd()).isEqualTo(100);
        assertThat(byHour.get(Instant.parse("2026-05-04T11:00:00Z").toEpochMilli()).getCostNanoUsd()).isEqualTo(10);
        UsageTotal month = last(monthly.readValuesToList());
        assertThat(month.getCostNanoUsd()).isEqualTo(110);
        assertThat(month.getEventCount()).isEqualTo(2);
        assertThat(month.getRevision()).isEqualTo(2);
        assertThat(month.getPeriodStart()).isEqualTo(Instant.parse("2026-05-01T00:00:00Z"));
        assertThat(month.getPeriodEnd()).isEqualTo(Instant.parse("2026-06-01T00:00:00Z"));
    }

    @Test
    void calendarMonthsIncludingLeapFebruaryAndYearEnd() {
        send(event("bob", "2028-02-29T23:59:59.999Z", 7));
        send(event("bob", "2028-03-01T00:00:00.000Z", 11));
        send(event("bob", "2028-12-31T23:59:59.999Z", 13));
        send(event("bob", "2029-01-01T00:00:00.000Z", 17));
        emit();
        Map<Long, UsageTotal> byMonth = latestByPeriod(monthly.readValuesToList());
        UsageTotal feb = byMonth.get(Instant.parse("2028-02-01T00:00:00Z").toEpochMilli());
        assertThat(feb.getCostNanoUsd()).isEqualTo(7);
        assertThat(feb.getPeriodEnd()).isEqualTo(Instant.parse("2028-03-01T00:00:00Z"));
        assertThat(byMonth.get(Instant.parse("2028-03-01T00:00:00Z").toEpochMilli()).getCostNanoUsd()).isEqualTo(11);
        assertThat(byMonth.get(Instant.parse("2028-12-01T00:00:00Z").toEpochMilli()).getCostNanoUsd()).isEqualTo(13);
        UsageTotal jan = byMonth.get(Instant.parse("2029-01-01T00:00:00Z").toEpochMilli());
        assertThat(jan.getCostNanoUsd()).isEqualTo(17);
        assertThat(jan.getPeriodEnd()).isEqualTo(Instant.parse("2029-02-01T00:00:00Z"));
    }

    @Test
    void aDuplicateEventIdCountsOnceAndDoesNotMoveTheRevision() {
        UsageEvent e = event("carol", "2026-05-04T10:15:00Z", 500);
        send(e);
        send(e);
        // A retry that carries another receivedAt is still the same call.
        send(UsageEvent.newBuilder(e).setReceivedAt(e.getReceivedAt().plusSeconds(30)).build());
        emit();
        UsageTotal month = last(monthly.readValuesToList());
        assertThat(month.getEventCount()).isEqualTo(1);
        assertThat(month.getCostNanoUsd()).isEqualTo(500);
        assertThat(month.getRevision()).isEqualTo(1);
    }

    @Test
    void outOfOrderWithinGraceIsOnTime() {
        send(event("dave", "2026-05-04T10:30:00Z", 1));
        send(event("dave", "2026-05-04T11:05:00Z", 2));
        send(event("dave", "2026-05-04T10:59:00Z", 3)); // 6 minutes after 11:00: within the 10-minute grace
        emit();
        assertThat(late.readValuesToList()).isEmpty();
        Map<Long, UsageTotal> byHour = latestByPeriod(hourly.readValuesToList());
        assertThat(byHour.get(Instant.parse("2026-05-04T10:00:00Z").toEpochMilli()).getCostNanoUsd()).isEqualTo(4);
    }

    @Test
    void aLateEventIsStillCountedAndAlsoSentToTheLateTopic() {
        send(event("erin", "2026-05-04T10:30:00Z", 1));
        send(event("erin", "2026-05-04T12:00:00Z", 2)); // stream time passes 11:00 + grace
        emit();
        UsageTotal hour10 = latestByPeriod(finals.readValuesToList()).get(Instant.parse("2026-05-04T10:00:00Z").toEpochMilli());
        assertThat(hour10.getIsFinal()).isTrue();
        assertThat(hour10.getCostNanoUsd()).isEqualTo(1);
        long revisionAtClose = hour10.getRevision();

        UsageEvent straggler = event("erin", "2026-05-04T10:45:00Z", 40);
        send(straggler);
        emit();
        assertThat(late.readValuesToList()).hasSize(1)
                .first().satisfies(bytes -> assertThat(EventSerdes.usageEvent().decode(bytes)).isEqualTo(straggler));
        UsageTotal corrected = last(finals.readValuesToList());
        assertThat(corrected.getPeriodStart()).isEqualTo(Instant.parse("2026-05-04T10:00:00Z"));
        assertThat(corrected.getCostNanoUsd()).as("late events are never dropped").isEqualTo(41);
        assertThat(corrected.getRevision()).isGreaterThan(revisionAtClose);
        assertThat(last(monthly.readValuesToList()).getCostNanoUsd()).isEqualTo(43);
    }

    @Test
    void finalTotalsAreEmittedOnceAfterGrace() {
        send(event("frank", "2026-05-04T10:30:00Z", 5));
        emit();
        assertThat(finals.readValuesToList()).isEmpty();
        send(event("frank", "2026-05-04T11:09:59.999Z", 1)); // 10:00 hour closes at 11:10:00.000
        emit();
        assertThat(finals.readValuesToList()).isEmpty();
        send(event("frank", "2026-05-04T11:10:00.000Z", 1));
        emit();
        List<UsageTotal> closed = finals.readValuesToList();
        assertThat(closed).hasSize(1);
        assertThat(closed.get(0).getGranularity()).isEqualTo(Granularity.HOUR);
        assertThat(closed.get(0).getCostNanoUsd()).isEqualTo(5);
        send(event("frank", "2026-05-04T11:30:00Z", 1));
        emit();
        assertThat(finals.readValuesToList()).as("no second final for the same hour").isEmpty();
    }

    @Test
    void aMonthClosesAfterItsGrace() {
        send(event("gina", "2026-05-31T23:00:00Z", 9));
        send(event("gina", "2026-06-01T23:59:59Z", 1));
        emit();
        assertThat(finals.readValuesToList()).noneMatch(t -> t.getGranularity() == Granularity.MONTH);
        send(event("gina", "2026-06-02T00:00:00Z", 1)); // June 1 + 1 day grace
        emit();
        assertThat(finals.readValuesToList()).filteredOn(t -> t.getGranularity() == Granularity.MONTH)
                .singleElement().satisfies(t -> {
                    assertThat(t.getPeriodStart()).isEqualTo(Instant.parse("2026-05-01T00:00:00Z"));
                    assertThat(t.getCostNanoUsd()).isEqualTo(9);
                });
    }

    @Test
    void poisonPillsGoToTheDeadLetterTopicAndProcessingContinues() {
        events.pipeInput("mallory", "{not avro}".getBytes(StandardCharsets.UTF_8), Instant.parse("2026-05-04T10:00:00Z"));
        UsageEvent negative = UsageEvent.newBuilder(event("mallory", "2026-05-04T10:00:00Z", 1)).setPromptTokens(-3).build();
        send(negative);
        send(event("mallory", "2026-05-04T10:01:00Z", 8));
        emit();
        List<TestRecord<String, byte[]>> dead = dlq.readRecordsToList();
        assertThat(dead).hasSize(2);
        assertThat(new String(dead.get(0).value(), StandardCharsets.UTF_8)).isEqualTo("{not avro}");
        assertThat(header(dead.get(0), DeadLetters.ERROR)).startsWith("undecodable");
        assertThat(header(dead.get(0), DeadLetters.SOURCE_TOPIC)).isEqualTo(topics.usageEvents().name());
        assertThat(header(dead.get(0), DeadLetters.SOURCE_OFFSET)).isEqualTo("0");
        assertThat(header(dead.get(1), DeadLetters.ERROR)).contains("promptTokens must be >= 0");
        assertThat(last(monthly.readValuesToList()).getCostNanoUsd()).isEqualTo(8);
    }

    /**
     * Issue 14, finding 3: two events of 5·10^14 completion tokens (5·10^18 nano-USD each) once overflowed the
     * month's cost and crash-looped the partition. They are beyond the event bounds (finding 1) now: both go
     * to the DLQ with the reason in headers, and later events are aggregated as before. (A total that would
     * still overflow is refused before anything is stored: RunningTotalTest.)
     */
    @Test
    void eventsBeyondTheBoundsAreDeadLetteredAndLaterEventsStillCount() {
        UsageEvent first = UsageEvent.newBuilder(event("olga", "2026-05-04T10:00:00Z", 5_000_000_000_000_000_000L))
                .setCompletionTokens(500_000_000_000_000L).build();
        UsageEvent second = UsageEvent.newBuilder(event("olga", "2026-05-04T10:30:00Z", 5_000_000_000_000_000_000L))
                .setCompletionTokens(500_000_000_000_000L).build();
        send(first);
        send(second);
        send(event("olga", "2026-05-04T10:40:00Z", 7));
        emit();

        List<TestRecord<String, byte[]>> dead = dlq.readRecordsToList();
        assertThat(dead).hasSize(2);
        assertThat(dead.get(1).value()).isEqualTo(EventSerdes.usageEvent().encode(second));
        assertThat(header(dead.get(1), DeadLetters.ERROR)).startsWith("invalid").contains("costNanoUsd");
        assertThat(header(dead.get(1), DeadLetters.SOURCE_OFFSET)).isEqualTo("1");
        UsageTotal total = last(monthly.readValuesToList());
        assertThat(total.getCostNanoUsd()).isEqualTo(7);
        assertThat(total.getEventCount()).isEqualTo(1);
    }

    /**
     * Issue 14, finding 3: a credit check on amounts whose hundredfold does not fit in a long is exact, not an
     * overflow: 10,000 events at the largest cost an event may carry reach 50 % of a 200-million-USD credit.
     */
    @Test
    void alertsAreExactForAmountsWhoseHundredfoldOverflowsALong() {
        long perEvent = dev.tokenmeter.events.validate.UsageEventBounds.COST_MAX_NANO_USD;
        long credit = 20_000 * perEvent;
        limits.pipeInput("pat", UserLimit.newBuilder().setUserId("pat").setMonthlyCreditNanoUsd(credit)
                .setUpdatedAt(Instant.parse("2026-05-01T00:00:00Z")).build());
        Instant start = Instant.parse("2026-05-04T10:00:00Z");
        for (int i = 0; i < 9_999; i++) {
            send(UsageEvent.newBuilder(event("pat", "2026-05-04T10:00:00Z", perEvent)).setOccurredAt(start.plusMillis(i)).build());
        }
        assertThat(alerts.readValuesToList()).as("one event short of 50 %").isEmpty();
        send(event("pat", "2026-05-04T11:00:00Z", perEvent));
        assertThat(alerts.readValuesToList()).extracting(a -> a.getThresholdPercent() + "@" + a.getCostNanoUsd())
                .containsExactly("50@" + credit / 2);
        assertThat(dlq.readRecordsToList()).isEmpty();
    }

    @Test
    void alertsFireOncePerThresholdPerMonth() {
        limits.pipeInput("ivan", UserLimit.newBuilder().setUserId("ivan").setMonthlyCreditNanoUsd(1_000)
                .setUpdatedAt(Instant.parse("2026-05-01T00:00:00Z")).build());
        send(event("ivan", "2026-05-04T10:00:00Z", 499));
        assertThat(alerts.readValuesToList()).isEmpty();
        send(event("ivan", "2026-05-04T10:01:00Z", 1)); // exactly 50%
        send(event("ivan", "2026-05-04T10:02:00Z", 350)); // 85%
        send(event("ivan", "2026-05-04T10:03:00Z", 1)); // still 85%
        send(UsageEvent.newBuilder(event("ivan", "2026-05-04T10:04:00Z", 500)).setKeySource(KeySource.PERSONAL_KEY).build());
        send(event("ivan", "2026-05-04T10:05:00Z", 200)); // 105%
        send(event("ivan", "2026-05-04T10:06:00Z", 200));
        send(event("ivan", "2026-06-01T00:00:00Z", 600)); // new month: 60%
        List<UsageAlert> raised = alerts.readValuesToList();
        assertThat(raised).extracting(a -> a.getBillingMonth() + ":" + a.getThresholdPercent())
                .containsExactly("2026-05:50", "2026-05:80", "2026-05:100", "2026-06:50");
        assertThat(raised.get(0).getCostNanoUsd()).isEqualTo(500);
        assertThat(raised.get(0).getAlertId()).isEqualTo("ivan|2026-05|50");
    }

    @Test
    void countsTokensAndOutcomesSeparatelyFromCost() {
        send(UsageEvent.newBuilder(event("judy", "2026-05-04T10:00:00Z", 0)).setOutcome(Outcome.REJECTED)
                .setKeySource(KeySource.NONE).setPromptTokens(0).setCompletionTokens(0).build());
        send(UsageEvent.newBuilder(event("judy", "2026-05-04T10:00:01Z", 70)).setPromptTokens(1500)
                .setCachedPromptTokens(1024).setCompletionTokens(300).setReasoningTokens(120).build());
        emit();
        Map<String, UsageTotal> byKey = new HashMap<>();
        monthly.readKeyValuesToList().forEach(kv -> byKey.put(kv.key, kv.value));
        UsageTotal service = byKey.values().stream().filter(t -> t.getKeySource() == KeySource.SERVICE_CREDIT).findFirst().orElseThrow();
        assertThat(service.getPromptTokens()).isEqualTo(1500);
        assertThat(service.getCachedPromptTokens()).isEqualTo(1024);
        assertThat(service.getReasoningTokens()).isEqualTo(120);
        assertThat(service.getSucceededCount()).isEqualTo(1);
        UsageTotal rejected = byKey.values().stream().filter(t -> t.getKeySource() == KeySource.NONE).findFirst().orElseThrow();
        assertThat(rejected.getRejectedCount()).isEqualTo(1);
        assertThat(byKey).containsKey("judy|gpt-4o-mini|SERVICE_CREDIT|MONTH|" + Instant.parse("2026-05-01T00:00:00Z").toEpochMilli());
    }

    @Test
    void eachChangedTotalIsEmittedOncePerIntervalWithItsLatestRevision() {
        send(event("kim", "2026-05-04T10:00:00Z", 7));
        send(event("kim", "2026-05-04T10:20:00Z", 3));
        assertThat(monthly.readValuesToList()).as("nothing before the emit interval").isEmpty();
        emit();
        List<UsageTotal> emitted = monthly.readValuesToList();
        assertThat(emitted).singleElement().satisfies(t -> {
            assertThat(t.getRevision()).isEqualTo(2);
            assertThat(t.getCostNanoUsd()).isEqualTo(10);
        });
        emit();
        assertThat(monthly.readValuesToList()).as("nothing changed, nothing emitted").isEmpty();
        send(event("kim", "2026-05-04T10:30:00Z", 5));
        emit();
        assertThat(monthly.readValuesToList()).singleElement().satisfies(t -> {
            assertThat(t.getRevision()).isEqualTo(3);
            assertThat(t.getCostNanoUsd()).isEqualTo(15);
        });
        assertThat(hourly.readValuesToList()).extracting(UsageTotal::getRevision).as("the hour: once per interval")
                .containsExactly(2L, 3L);
    }

    @Test
    void eventIdsAreRememberedForAtLeastTheRetentionAndForgottenWithinTwice() {
        UsageEvent first = event("omar", "2026-05-01T00:00:00Z", 1);
        send(first);
        send(event("omar", "2026-05-07T23:00:00Z", 2)); // just under the 7-day retention later
        send(first);
        emit();
        assertThat(last(monthly.readValuesToList()).getCostNanoUsd()).as("the duplicate within retention is dropped").isEqualTo(3);

        for (String day : List.of("2026-05-08", "2026-05-15", "2026-05-22")) { // three retentions on, emitting each week
            send(event("omar", day + "T00:00:00Z", 10));
            emit();
            emit();
        }
        assertThat(last(monthly.readValuesToList()).getCostNanoUsd()).isEqualTo(33);
        send(first);
        emit();
        assertThat(last(monthly.readValuesToList()).getCostNanoUsd())
                .as("after two retentions the id is forgotten, so the store stays bounded").isEqualTo(34);
    }

    @Test
    void aLimitArrivingMidMonthAlertsOnTheCostSoFar() {
        send(event("lena", "2026-05-04T10:00:00Z", 700));
        limits.pipeInput("lena", UserLimit.newBuilder().setUserId("lena").setMonthlyCreditNanoUsd(1_000)
                .setUpdatedAt(Instant.parse("2026-05-04T10:00:00Z")).build());
        assertThat(alerts.readValuesToList()).isEmpty();
        send(event("lena", "2026-05-04T10:01:00Z", 100)); // 80% of the new credit
        assertThat(alerts.readValuesToList()).extracting(UsageAlert::getThresholdPercent).containsExactly(50, 80);
        limits.pipeInput("lena", (UserLimit) null); // limit removed: no more alerts
        send(event("lena", "2026-05-04T10:02:00Z", 900));
        assertThat(alerts.readValuesToList()).isEmpty();
    }

    private void send(UsageEvent e) {
        events.pipeInput(e.getUserId(), EventSerdes.usageEvent().encode(e), e.getOccurredAt());
    }

    private void emit() {
        driver.advanceWallClockTime(Duration.ofSeconds(2));
    }

    static UsageEvent event(String user, String occurredAt, long costNanoUsd) {
        Instant at = Instant.parse(occurredAt);
        return UsageEvent.newBuilder()
                .setEventId(UUID.randomUUID().toString())
                .setOccurredAt(at).setReceivedAt(at.plusMillis(250))
                .setTenantId("t1").setUserId(user).setKeySource(KeySource.SERVICE_CREDIT)
                .setModel("gpt-4o-mini").setEndpoint("/v1/chat/completions")
                .setOutcome(Outcome.SUCCEEDED).setHttpStatus(200)
                .setPromptTokens(10).setCompletionTokens(5).setCostNanoUsd(costNanoUsd)
                .build();
    }

    private static Map<Long, UsageTotal> latestByPeriod(List<UsageTotal> totals) {
        Map<Long, UsageTotal> latest = new HashMap<>();
        totals.forEach(t -> latest.merge(t.getPeriodStart().toEpochMilli(), t, (a, b) -> b.getRevision() >= a.getRevision() ? b : a));
        return latest;
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
