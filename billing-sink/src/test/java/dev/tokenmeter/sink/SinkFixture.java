package dev.tokenmeter.sink;

import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.PostgresEngine;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.conf.Settings;
import org.jooq.impl.DSL;
import org.postgresql.ds.PGSimpleDataSource;

import java.time.Clock;
import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * One sink under test: its own topics (unique prefix) and database, the environment a
 * {@link BillingSinkApp} reads, an in-process app or the env for a child JVM, and a producer.
 */
final class SinkFixture implements AutoCloseable {

    final Topics topics;
    final String jdbcUrl;
    final DSLContext db;
    private final KafkaEngine kafka;
    private final PostgresEngine postgres;
    private final KafkaProducer<String, byte[]> producer;
    final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private BillingSinkApp app;

    SinkFixture(KafkaEngine kafka, PostgresEngine postgres, int partitions) {
        this.kafka = kafka;
        this.postgres = postgres;
        this.topics = Topics.withPrefix(Names.unique("sink") + ".", partitions);
        // With their production configs: usage-events keeps records forever. Under the broker's default
        // 7-day retention, events timestamped weeks ago roll and expire segments (records vanish).
        try (Admin admin = Admin.create(kafka.clientProperties())) {
            topics.createAll(admin, (short) 1);
        }
        for (var t : List.of(topics.usageEvents(), topics.hourlyTotals(), topics.monthlyTotals(), topics.finalTotals())) {
            kafka.createTopic(t.name(), partitions); // exists already; waits until usable
        }
        this.jdbcUrl = postgres.createMigratedDatabase("sink");
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(jdbcUrl);
        ds.setUser(postgres.user());
        ds.setPassword(postgres.password());
        this.db = DSL.using(ds, SQLDialect.POSTGRES, new Settings().withExecuteLogging(false));
        Map<String, Object> props = new HashMap<>();
        props.putAll(kafka.clientProperties());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        props.put(ProducerConfig.BATCH_SIZE_CONFIG, 256 * 1024);
        this.producer = new KafkaProducer<>(props, new StringSerializer(), new ByteArraySerializer());
    }

    /** The environment the app reads (also for a child JVM). */
    Map<String, String> env(Map<String, String> overrides) {
        Map<String, String> env = new LinkedHashMap<>();
        env.putAll(kafka.clientEnv());
        env.put("TOPIC_PREFIX", topics.usageEvents().name().replace("usage-events", ""));
        env.put("GROUP_ID", "billing-sink-test");
        env.put("DATABASE_URL", jdbcUrl);
        // As deployed: the sink's own role (V12), not the owner, so a missing grant fails here.
        DatabaseLogin login = postgres.login(ServiceLogins.SINK);
        env.put("DATABASE_USER", login.user());
        env.put("DATABASE_PASSWORD", login.password());
        env.put("DATABASE_POOL_SIZE", "3");
        env.put("BATCH_MAX_RECORDS", "2000");
        env.put("RETRY_BACKOFF_MAX", "1s");
        env.put("PERIOD_CLOSE_INTERVAL", "1000d");
        env.put("METRICS_PORT", "-1");
        env.putAll(overrides);
        return env;
    }

    SinkFixture startApp(Map<String, String> overrides) {
        return startApp(overrides, Clock.systemUTC());
    }

    /** With the clock the app's period closer reads. */
    SinkFixture startApp(Map<String, String> overrides, Clock clock) {
        app = new BillingSinkApp(BillingSinkConfig.fromEnv(env(overrides)), topics, new SinkMetrics(registry), clock).start();
        return this;
    }

    void stopApp() {
        if (app != null) {
            app.close();
            app = null;
        }
    }

    double counter(String name) {
        var c = registry.find(name).counter();
        return c == null ? 0 : c.count();
    }

    void sendEvents(Collection<UsageEvent> events) {
        for (UsageEvent e : events) {
            producer.send(new ProducerRecord<>(topics.usageEvents().name(), null, e.getOccurredAt().toEpochMilli(),
                    e.getUserId(), EventSerdes.usageEvent().encode(e)));
        }
        producer.flush();
    }

    void sendRaw(String topic, String key, byte[] value) {
        producer.send(new ProducerRecord<>(topic, key, value));
        producer.flush();
    }

    void sendTotals(String topic, Collection<UsageTotal> totals) {
        for (UsageTotal t : totals) {
            producer.send(new ProducerRecord<>(topic, totalKey(t), EventSerdes.usageTotal().encode(t)));
        }
        producer.flush();
    }

    long ledgerRows() {
        return longValue("SELECT count(*) FROM usage_ledger");
    }

    long storedNextOffsets() {
        return longValue("SELECT coalesce(sum(next_offset), 0)::bigint FROM sink_offset WHERE topic = ?",
                topics.usageEvents().name());
    }

    /** A single number from SQL (counts, sums), as a long; null counts as 0. */
    long longValue(String sql, Object... bindings) {
        Object v = db.fetchValue(sql, bindings);
        return v == null ? 0 : ((Number) v).longValue();
    }

    java.math.BigDecimal decimal(String sql, Object... bindings) {
        return db.fetchOne(sql, bindings).get(0, java.math.BigDecimal.class);
    }

    @Override
    public void close() {
        stopApp();
        producer.close();
    }

    // ---- test data ----

    static UsageEvent event(String userId, String model, KeySource keySource, Instant occurredAt, long prompt, long completion,
                            long costNanoUsd) {
        return UsageEvent.newBuilder()
                .setEventId(UUID.randomUUID().toString())
                .setOccurredAt(occurredAt)
                .setReceivedAt(occurredAt.plusMillis(5))
                .setTenantId("tenant-" + userId)
                .setUserId(userId)
                .setApiKeyId("key-1")
                .setKeySource(keySource)
                .setModel(model)
                .setEndpoint("/v1/chat/completions")
                .setOutcome(Outcome.SUCCEEDED)
                .setHttpStatus(200)
                .setPromptTokens(prompt)
                .setCachedPromptTokens(0)
                .setCompletionTokens(completion)
                .setReasoningTokens(0)
                .setCostNanoUsd(costNanoUsd)
                .setPriceVersion(model + "@2025-01-01")
                .setUsageSource(UsageSource.REPORTED)
                .setStreamed(false)
                .setCacheHit(false)
                .setLatencyMs(120)
                .setEdgeInstance("edge-test")
                .build();
    }

    static String totalKey(UsageTotal t) {
        return t.getUserId() + "|" + t.getModel() + "|" + t.getKeySource() + "|" + t.getGranularity() + "|" + t.getPeriodStart().toEpochMilli();
    }

    /**
     * Hourly and monthly totals of the events, computed independently of the sink and the aggregator:
     * one total per (user, model, key source, period) with revision = events folded in.
     */
    static Map<String, UsageTotal> totalsOf(Collection<UsageEvent> events) {
        Map<String, UsageTotal> totals = new LinkedHashMap<>();
        for (UsageEvent e : events) {
            for (Granularity g : Granularity.values()) {
                Instant start = g == Granularity.HOUR
                        ? e.getOccurredAt().truncatedTo(ChronoUnit.HOURS)
                        : YearMonth.from(e.getOccurredAt().atZone(ZoneOffset.UTC)).atDay(1).atStartOfDay(ZoneOffset.UTC).toInstant();
                Instant end = g == Granularity.HOUR ? start.plus(1, ChronoUnit.HOURS)
                        : start.atZone(ZoneOffset.UTC).plusMonths(1).toInstant();
                UsageTotal blank = UsageTotal.newBuilder().setUserId(e.getUserId()).setTenantId(e.getTenantId())
                        .setModel(e.getModel()).setKeySource(e.getKeySource()).setGranularity(g).setPeriodStart(start)
                        .setPeriodEnd(end).setRevision(0).setIsFinal(false).build();
                UsageTotal t = totals.computeIfAbsent(totalKey(blank), k -> blank);
                t.setEventCount(t.getEventCount() + 1);
                t.setSucceededCount(t.getSucceededCount() + 1);
                t.setPromptTokens(t.getPromptTokens() + e.getPromptTokens());
                t.setCompletionTokens(t.getCompletionTokens() + e.getCompletionTokens());
                t.setCostNanoUsd(t.getCostNanoUsd() + e.getCostNanoUsd());
                t.setFirstEventAt(t.getFirstEventAt() == null || e.getOccurredAt().isBefore(t.getFirstEventAt()) ? e.getOccurredAt() : t.getFirstEventAt());
                t.setLastEventAt(t.getLastEventAt() == null || e.getOccurredAt().isAfter(t.getLastEventAt()) ? e.getOccurredAt() : t.getLastEventAt());
                t.setRevision(t.getRevision() + 1);
            }
        }
        return totals;
    }

    void sendTotalsOf(Collection<UsageTotal> totals) {
        sendTotals(topics.hourlyTotals().name(), totals.stream().filter(t -> t.getGranularity() == Granularity.HOUR).toList());
        sendTotals(topics.monthlyTotals().name(), totals.stream().filter(t -> t.getGranularity() == Granularity.MONTH).toList());
    }
}
