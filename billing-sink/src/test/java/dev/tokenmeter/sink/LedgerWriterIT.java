package dev.tokenmeter.sink;

import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.validate.UsageEventBounds;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.PostgresEngine;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import dev.tokenmeter.db.jooq.tables.records.UsageLedgerRecord;
import org.jooq.DSLContext;
import org.jooq.Field;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import org.postgresql.ds.PGSimpleDataSource;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.SINK_DEAD_LETTER;
import static dev.tokenmeter.db.jooq.Tables.SINK_OFFSET;
import static dev.tokenmeter.db.jooq.Tables.USAGE_LEDGER;
import static org.assertj.core.api.Assertions.assertThat;

/** The ledger writer against a real Postgres: idempotence, dedup on the id alone, dead letters, positions. */
@ExtendWith(EnginesExtension.class)
class LedgerWriterIT {

    private final PostgresEngine postgres;
    private DSLContext db;
    /** The schema's owner, for what a test changes in its own database (the sink's role may not). */
    private DSLContext owner;
    private LedgerWriter writer;
    private long offset;

    LedgerWriterIT(PostgresEngine postgres) {
        this.postgres = postgres;
    }

    @BeforeEach
    void freshDatabase() throws Exception {
        String url = postgres.createMigratedDatabase("ledger");
        PGSimpleDataSource dataSource = new PGSimpleDataSource();
        dataSource.setUrl(url);
        DatabaseLogin sink = postgres.login(ServiceLogins.SINK); // the sink's own role, as deployed
        dataSource.setUser(sink.user());
        dataSource.setPassword(sink.password());
        db = DSL.using(dataSource, SQLDialect.POSTGRES);
        PGSimpleDataSource ownerSource = new PGSimpleDataSource();
        ownerSource.setUrl(url);
        ownerSource.setUser(postgres.user());
        ownerSource.setPassword(postgres.password());
        owner = DSL.using(ownerSource, SQLDialect.POSTGRES);
        writer = new LedgerWriter(db, new OffsetStore("test"), SinkMetrics.noop());
    }

    @Test
    void aRedeliveredBatchChangesNothing() {
        List<ConsumerRecord<byte[], byte[]>> batch = new ArrayList<>();
        for (int i = 0; i < 1200; i++) {
            batch.add(record(event("u" + (i % 7), "2026-11-05T10:00:00Z", 1000 + i)));
        }
        writer.write(batch, Map.of(new TopicPartition("usage-events", 0), offset));
        long cost = totalCost();
        writer.write(batch, Map.of(new TopicPartition("usage-events", 0), offset));

        assertThat(db.fetchCount(USAGE_LEDGER)).isEqualTo(1200);
        assertThat(totalCost()).isEqualTo(cost).isEqualTo(1200L * 1000 + 1199L * 1200 / 2);
        assertThat(db.select(SINK_OFFSET.NEXT_OFFSET).from(SINK_OFFSET).fetchOne(SINK_OFFSET.NEXT_OFFSET)).isEqualTo(offset);
    }

    @Test
    void aResendWithTheSameIdInAnotherMonthIsNotBilledTwice() {
        // The bug Lago shipped: the partitioned primary key includes the month, the dedup must not.
        UsageEvent october = event("alice", "2026-10-31T23:59:59.999Z", 777);
        UsageEvent resentAsNovember = UsageEvent.newBuilder(october).setOccurredAt(Instant.parse("2026-11-01T00:00:00Z")).build();
        writer.write(List.of(record(october)), Map.of(new TopicPartition("usage-events", 0), offset));
        writer.write(List.of(record(resentAsNovember), record(october)), Map.of(new TopicPartition("usage-events", 0), offset));

        assertThat(db.fetchCount(USAGE_LEDGER)).isEqualTo(1);
        assertThat(db.select(USAGE_LEDGER.BILLING_MONTH).from(USAGE_LEDGER).fetchOne(USAGE_LEDGER.BILLING_MONTH))
                .hasToString("2026-10-01");
    }

    @Test
    void poisonAndInvalidRecordsAreKeptWithTheirReasonAndTheRestIsBilled() {
        ConsumerRecord<byte[], byte[]> garbage = new ConsumerRecord<>("usage-events", 0, offset++, "k".getBytes(), "not avro".getBytes());
        UsageEvent negative = UsageEvent.newBuilder(event("bob", "2026-11-05T10:00:00Z", 5)).setCompletionTokens(-1).build();
        UsageEvent good = event("bob", "2026-11-05T10:00:01Z", 9);
        writer.write(List.of(garbage, record(negative), record(good)), Map.of(new TopicPartition("usage-events", 0), offset));

        assertThat(db.fetchCount(USAGE_LEDGER)).isEqualTo(1);
        assertThat(db.select(SINK_DEAD_LETTER.REASON).from(SINK_DEAD_LETTER).orderBy(SINK_DEAD_LETTER.KAFKA_OFFSET)
                .fetch(SINK_DEAD_LETTER.REASON))
                .satisfiesExactly(
                        r -> assertThat(r).startsWith("undecodable"),
                        r -> assertThat(r).contains("completionTokens must be >= 0"));
        assertThat(db.select(SINK_DEAD_LETTER.RECORD_VALUE).from(SINK_DEAD_LETTER).orderBy(SINK_DEAD_LETTER.KAFKA_OFFSET)
                .limit(1).fetchOne(SINK_DEAD_LETTER.RECORD_VALUE)).isEqualTo("not avro".getBytes());
    }

    @Test
    void aRowTheDatabaseRejectsIsIsolatedNotTheBatch() {
        UsageEvent before = event("carol", "2026-11-05T10:00:00Z", 5);
        UsageEvent after = event("carol", "2026-11-05T10:00:01Z", 6);
        // The validator now refuses what Postgres refuses by itself (U+0000, ADR 0053), so a constraint of this test's own
        // database stands for a row only the database refuses (a future constraint, a trigger).
        owner.execute("ALTER TABLE usage_ledger ADD CONSTRAINT test_refused_model CHECK (model <> 'refused-by-the-database')");
        UsageEvent nul = UsageEvent.newBuilder(event("carol", "2026-11-05T10:00:02Z", 7)).setModel("refused-by-the-database").build();
        writer.write(List.of(record(before), record(nul), record(after)), Map.of(new TopicPartition("usage-events", 0), offset));

        assertThat(db.fetchCount(USAGE_LEDGER)).as(db.select(SINK_DEAD_LETTER.REASON).from(SINK_DEAD_LETTER).fetch().toString()).isEqualTo(2);
        assertThat(db.fetchCount(SINK_DEAD_LETTER)).isEqualTo(1);
        assertThat(db.select(SINK_DEAD_LETTER.REASON).from(SINK_DEAD_LETTER).fetchOne(SINK_DEAD_LETTER.REASON))
                .startsWith("refused by the database: 23514");
    }

    @Test
    void copiedRowsRoundTripExactly() {
        // Issue 6: the ledger rows go in with binary COPY; every value must come back as it went in. Since ADR 0053 ids,
        // model and endpoint have an alphabet; free text (attribute values) and the upstream's printable id do not.
        String awkward = "tab\there, newline\nthere, cr\r, backslash \\ and \\N and \\t, quotes ' \" `, "
                + "non-ASCII é ü ß 中文 😀 \u2028, control \u0001";
        String id = "a.b_c:d@e+f-" + "x".repeat(UsageEventBounds.ID_MAX_CHARS - 12);
        UsageEvent full = UsageEvent.newBuilder(event(id, "1999-12-31T23:59:59.999Z", UsageEventBounds.COST_MAX_NANO_USD))
                .setTenantId("t" + id.substring(1)).setApiKeyId("k" + id.substring(1)).setProvider("p" + id.substring(1))
                .setModel("ft:a/b.c_d-" + "m".repeat(UsageEventBounds.MODEL_MAX_CHARS - 11)).setEndpoint("/v1/a.b_c:d-e")
                .setUpstreamRequestId("\\N\\t'\"`|~!" + "r".repeat(UsageEventBounds.UPSTREAM_REQUEST_ID_MAX_CHARS - 11))
                .setPriceVersion("m@1999-12-31T23:59:59Z\\N").setReservationId("{u:" + id + "}:1999-12:r:k:x").setEdgeInstance("e" + id.substring(1))
                .setKeySource(KeySource.PERSONAL_KEY).setOutcome(Outcome.CANCELLED).setUsageSource(UsageSource.ESTIMATED)
                .setHttpStatus(599).setPromptTokens(UsageEventBounds.TOKENS_MAX).setCachedPromptTokens(1)
                .setCompletionTokens(UsageEventBounds.TOKENS_MAX).setReasoningTokens(UsageEventBounds.TOKENS_MAX - 1)
                .setLatencyMs(UsageEventBounds.LATENCY_MAX_MS)
                .setStreamed(true).setCacheHit(true)
                .setReceivedAt(Instant.parse("2038-01-19T03:14:08.001Z"))
                .setAttributes(Map.of("awkward", awkward + "|value", "empty", "", "feature", "chat", "N", "\\N"))
                .setAnsweredModel("ft:a/b.c_d-" + "a".repeat(UsageEventBounds.MODEL_MAX_CHARS - 11)).setServiceTier("priority")
                // v4 (ADR 0078): a project and labels at their bounds.
                .setProject("P._-" + "p".repeat(60)).setLabels(Map.of("feature", "chat", "k" + "x".repeat(31), "A-z_0.9:x@y/" + "v".repeat(52)))
                .build();
        UsageEvent empty = UsageEvent.newBuilder(event("u", "2026-11-30T23:59:59.999Z", 0))
                .setTenantId("t").setModel("m").setEndpoint("/").setProvider("p")
                .setApiKeyId(null).setUpstreamRequestId(null).setPriceVersion(null).setReservationId(null).setEdgeInstance(null)
                .setAttributes(Map.of())
                .build();
        writer.write(List.of(record(full), record(empty)), Map.of(new TopicPartition("usage-events", 0), offset));

        assertThat(db.fetchCount(SINK_DEAD_LETTER)).isZero();
        for (UsageEvent e : List.of(full, empty)) {
            UsageLedgerRecord expected = LedgerRecords.of(e);
            UsageLedgerRecord stored = db.selectFrom(USAGE_LEDGER).where(USAGE_LEDGER.EVENT_ID.eq(expected.getEventId())).fetchSingle();
            for (Field<?> f : USAGE_LEDGER.fields()) {
                if (f.equals(USAGE_LEDGER.INGESTED_AT)) {
                    continue; // stamped by the database
                }
                Object want = expected.get(f);
                Object got = stored.get(f);
                if (want instanceof OffsetDateTime t) {
                    assertThat(((OffsetDateTime) got).toInstant()).as(f.getName()).isEqualTo(t.toInstant());
                } else if (f.equals(USAGE_LEDGER.ATTRIBUTES) || f.equals(USAGE_LEDGER.LABELS)) {
                    assertThat(db.fetchValue("SELECT ({0} = {1}::jsonb)", got, ((org.jooq.JSONB) want).data())).as(f.getName())
                            .isEqualTo(true);
                } else {
                    assertThat(got).as(f.getName()).isEqualTo(want);
                }
            }
            for (Map.Entry<String, String> a : e.getAttributes().entrySet()) {
                assertThat(db.fetchValue(DSL.select(DSL.field("{0} ->> {1}", String.class, USAGE_LEDGER.ATTRIBUTES, DSL.val(a.getKey())))
                        .from(USAGE_LEDGER).where(USAGE_LEDGER.EVENT_ID.eq(expected.getEventId()))))
                        .as("attribute " + a.getKey()).isEqualTo(a.getValue());
            }
        }
        assertThat(db.select(USAGE_LEDGER.BILLING_MONTH).from(USAGE_LEDGER).orderBy(USAGE_LEDGER.BILLING_MONTH)
                .fetch(USAGE_LEDGER.BILLING_MONTH)).hasToString("[1999-12-01, 2026-11-01]");
    }

    @Test
    void aV1EventStillDecodesAndBills_atTheStandardTier() throws Exception { // issue 16, ADR 0068
        // Written by a producer that knows only UsageEvent v1 (no answeredModel, no serviceTier).
        UsageEvent like = event("dave", "2026-11-05T10:00:00Z", 1_234_567);
        byte[] v1Bytes = encodedAs("UsageEvent/v1.avsc", like);
        UsageEvent v2 = UsageEvent.newBuilder(event("dave", "2026-11-05T10:00:01Z", 7))
                .setServiceTier("flex").setAnsweredModel("gpt-4o-mini-2024-07-18").build();
        writer.write(List.of(new ConsumerRecord<>("usage-events", 0, offset++, "dave".getBytes(), v1Bytes), record(v2)),
                Map.of(new TopicPartition("usage-events", 0), offset));

        assertThat(db.fetchCount(SINK_DEAD_LETTER)).isZero();
        UsageLedgerRecord v1Row = db.selectFrom(USAGE_LEDGER).where(USAGE_LEDGER.EVENT_ID.eq(UUID.fromString(like.getEventId()))).fetchSingle();
        assertThat(v1Row.getCostNanoUsd()).isEqualTo(1_234_567);
        assertThat(v1Row.getServiceTier()).isEqualTo("standard");
        assertThat(v1Row.getAnsweredModel()).isNull();
        UsageLedgerRecord v2Row = db.selectFrom(USAGE_LEDGER).where(USAGE_LEDGER.EVENT_ID.eq(UUID.fromString(v2.getEventId()))).fetchSingle();
        assertThat(v2Row.getServiceTier()).isEqualTo("flex");
        assertThat(v2Row.getAnsweredModel()).isEqualTo("gpt-4o-mini-2024-07-18");
        assertThat(totalCost()).isEqualTo(1_234_567 + 7);
    }

    @Test
    void aResponseCacheHitKeepsItsAgeAndZeroUpstreamCost_andTheStatementShowsItAsItsOwnLine() throws Exception { // issue 19, ADR 0075
        // A v2 producer's event (no v3 fields): no hit, and it cost the upstream what it was billed.
        UsageEvent full = event("erin", "2026-11-05T10:00:00Z", 1_000_000);
        UsageEvent hit = UsageEvent.newBuilder(event("erin", "2026-11-05T10:00:02Z", 250_000))
                .setResponseCacheHit(true).setResponseCacheAgeMs(1_234L).setUpstreamCostNanoUsd(0L).build();
        UsageEvent freeHit = UsageEvent.newBuilder(event("erin", "2026-11-05T10:00:03Z", 0))
                .setResponseCacheHit(true).setResponseCacheAgeMs(0L).setUpstreamCostNanoUsd(0L).build();
        writer.write(List.of(new ConsumerRecord<>("usage-events", 0, offset++, "erin".getBytes(), encodedAs("UsageEvent/v2.avsc", full)),
                record(hit), record(freeHit)), Map.of(new TopicPartition("usage-events", 0), offset));

        assertThat(db.fetchCount(SINK_DEAD_LETTER)).isZero();
        UsageLedgerRecord fullRow = row(full);
        assertThat(fullRow.getResponseCacheHit()).isFalse();
        assertThat(fullRow.getResponseCacheAgeMs()).isNull();
        assertThat(fullRow.getUpstreamCostNanoUsd()).isEqualTo(1_000_000);
        UsageLedgerRecord hitRow = row(hit);
        assertThat(hitRow.getResponseCacheHit()).isTrue();
        assertThat(hitRow.getResponseCacheAgeMs()).isEqualTo(1_234);
        assertThat(hitRow.getUpstreamCostNanoUsd()).isZero();
        assertThat(hitRow.getCostNanoUsd()).isEqualTo(250_000);
        assertThat(totalCost()).isEqualTo(1_250_000);

        // The aggregator's running total of the month holds all three; the statement splits it, exactly.
        owner.execute("""
                INSERT INTO usage_total_monthly (user_id, model, key_source, billing_month, tenant_id, event_count, succeeded_count,
                    failed_count, cancelled_count, rejected_count, prompt_tokens, cached_prompt_tokens, completion_tokens,
                    reasoning_tokens, cost_nano_usd, revision)
                VALUES ('erin', 'gpt-4o-mini', 'SERVICE_CREDIT', '2026-11-01', 't', 3, 3, 0, 0, 0, 30, 0, 15, 0, 1250000, 3)""");
        assertThat(owner.fetch("""
                SELECT line_kind, requests, total_tokens, cost_nano_usd, cost_usd FROM monthly_statement
                WHERE user_id = 'erin' ORDER BY line_kind""").map(r -> r.intoList().toString()))
                .containsExactly("[CACHE_HIT, 2, 30, 250000, 0.000250000]", "[USAGE, 1, 15, 1000000, 0.001000000]");
    }

    /** The event as a producer that knows only the released schema {@code released} writes it. */
    private static byte[] encodedAs(String released, UsageEvent like) {
        org.apache.avro.Schema schema = dev.tokenmeter.events.serde.ReleasedSchemas.parse(released);
        org.apache.avro.generic.GenericData.Record old = new org.apache.avro.generic.GenericData.Record(schema);
        for (org.apache.avro.Schema.Field f : schema.getFields()) {
            Object value = like.get(f.name());
            if (value instanceof Instant t) {
                value = t.toEpochMilli();
            } else if (value instanceof Enum<?> en) {
                value = new org.apache.avro.generic.GenericData.EnumSymbol(f.schema(), en.name());
            }
            old.put(f.name(), value);
        }
        try {
            return new org.apache.avro.message.BinaryMessageEncoder<org.apache.avro.generic.GenericRecord>(
                    org.apache.avro.generic.GenericData.get(), schema).encode(old).array();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private UsageLedgerRecord row(UsageEvent e) {
        return db.selectFrom(USAGE_LEDGER).where(USAGE_LEDGER.EVENT_ID.eq(UUID.fromString(e.getEventId()))).fetchSingle();
    }

    private long totalCost() {
        return db.select(DSL.sum(USAGE_LEDGER.COST_NANO_USD)).from(USAGE_LEDGER).fetchOne(0, Long.class);
    }

    private ConsumerRecord<byte[], byte[]> record(UsageEvent e) {
        return new ConsumerRecord<>("usage-events", 0, offset++, e.getUserId().getBytes(), EventSerdes.usageEvent().encode(e));
    }

    static UsageEvent event(String user, String at, long cost) {
        Instant t = Instant.parse(at);
        return UsageEvent.newBuilder()
                .setEventId(UUID.randomUUID().toString())
                .setOccurredAt(t).setReceivedAt(t.plusMillis(5))
                .setTenantId("t").setUserId(user).setKeySource(KeySource.SERVICE_CREDIT)
                .setModel("gpt-4o-mini").setEndpoint("/v1/chat/completions")
                .setOutcome(Outcome.SUCCEEDED).setHttpStatus(200)
                .setPromptTokens(10).setCompletionTokens(5).setCostNanoUsd(cost)
                .build();
    }
}
