package dev.tokenmeter.sink;

import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.PostgresEngine;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.ds.PGSimpleDataSource;

import java.time.Instant;
import java.util.List;
import java.util.Map;

import static dev.tokenmeter.db.jooq.Tables.SINK_DEAD_LETTER;
import static dev.tokenmeter.db.jooq.Tables.SINK_OFFSET;
import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_HOURLY;
import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;
import static org.assertj.core.api.Assertions.assertThat;

/** Totals upserts on a real Postgres: the newest revision wins whatever the arrival order; final is sticky. */
@ExtendWith(EnginesExtension.class)
class TotalsWriterIT {

    private final PostgresEngine postgres;
    private DSLContext db;
    private TotalsWriter writer;
    private SinkMetrics metrics;
    private long offset;

    TotalsWriterIT(PostgresEngine postgres) {
        this.postgres = postgres;
    }

    @BeforeEach
    void freshDatabase() {
        PGSimpleDataSource dataSource = new PGSimpleDataSource();
        dataSource.setUrl(postgres.createMigratedDatabase("totals"));
        DatabaseLogin sink = postgres.login(ServiceLogins.SINK); // the sink's own role, as deployed
        dataSource.setUser(sink.user());
        dataSource.setPassword(sink.password());
        db = DSL.using(dataSource, SQLDialect.POSTGRES);
        metrics = SinkMetrics.noop();
        writer = new TotalsWriter(db, new OffsetStore("test"), metrics);
    }

    @Test
    void anOlderRevisionNeverOverwritesANewerOne() {
        write(total(Granularity.HOUR, 3, 300, false), total(Granularity.MONTH, 3, 300, false));
        write(total(Granularity.HOUR, 2, 200, false), total(Granularity.MONTH, 1, 100, false)); // redelivered, older
        assertThat(db.select(USAGE_TOTAL_HOURLY.REVISION, USAGE_TOTAL_HOURLY.COST_NANO_USD).from(USAGE_TOTAL_HOURLY).fetchOne())
                .satisfies(r -> assertThat(r.value2()).isEqualTo(300L));
        assertThat(db.select(USAGE_TOTAL_MONTHLY.COST_NANO_USD).from(USAGE_TOTAL_MONTHLY).fetchOne(USAGE_TOTAL_MONTHLY.COST_NANO_USD))
                .isEqualTo(300L);
        // Within one batch too, whatever the order.
        write(total(Granularity.HOUR, 5, 500, false), total(Granularity.HOUR, 4, 400, false));
        assertThat(db.select(USAGE_TOTAL_HOURLY.COST_NANO_USD).from(USAGE_TOTAL_HOURLY).fetchOne(USAGE_TOTAL_HOURLY.COST_NANO_USD))
                .isEqualTo(500L);
    }

    @Test
    void finalIsStickyAndACorrectionKeepsIt() {
        write(total(Granularity.MONTH, 7, 700, false));
        write(total(Granularity.MONTH, 7, 700, true)); // the final copy of the same revision
        assertThat(db.select(USAGE_TOTAL_MONTHLY.IS_FINAL).from(USAGE_TOTAL_MONTHLY).fetchOne(USAGE_TOTAL_MONTHLY.IS_FINAL)).isTrue();
        write(total(Granularity.MONTH, 8, 750, false)); // a running copy of a later correction
        assertThat(db.select(USAGE_TOTAL_MONTHLY.IS_FINAL, USAGE_TOTAL_MONTHLY.COST_NANO_USD).from(USAGE_TOTAL_MONTHLY).fetchOne())
                .satisfies(r -> {
                    assertThat(r.value1()).isTrue();
                    assertThat(r.value2()).isEqualTo(750L);
                });
    }

    /**
     * Issue 14, finding 2: a model Postgres refuses — a nul character (not valid in text) or 10 KB that
     * does not compress (an index row larger than a btree page allows) — is set aside to
     * {@code sink_dead_letter} with its reason; the rest of the batch is written and the positions move on.
     */
    @Test
    void aTotalPostgresRefusesIsSetAsideAndTheRestOfTheBatchIsWritten() {
        StringBuilder huge = new StringBuilder("gpt-");
        java.util.Random random = new java.util.Random(14);
        while (huge.length() < 10_240) {
            huge.append((char) ('!' + random.nextInt(94))); // printable and incompressible: pglz cannot shrink it under the limit
        }
        UsageTotal before = total(Granularity.HOUR, 1, 100, false);
        UsageTotal nul = withModel(total(Granularity.MONTH, 1, 100, false), "gpt\u00004o");
        UsageTotal tooLong = withModel(total(Granularity.HOUR, 1, 100, true), huge.toString());
        UsageTotal after = total(Granularity.MONTH, 2, 200, true);

        write(before, nul, tooLong, after);

        assertThat(db.select(USAGE_TOTAL_HOURLY.MODEL, USAGE_TOTAL_HOURLY.COST_NANO_USD).from(USAGE_TOTAL_HOURLY).fetch()
                .map(r -> r.value1() + "=" + r.value2())).containsExactly("gpt-4o=100");
        assertThat(db.select(USAGE_TOTAL_MONTHLY.MODEL, USAGE_TOTAL_MONTHLY.COST_NANO_USD, USAGE_TOTAL_MONTHLY.IS_FINAL)
                .from(USAGE_TOTAL_MONTHLY).fetch().map(r -> r.value1() + "=" + r.value2() + "/" + r.value3()))
                .containsExactly("gpt-4o=200/true");
        assertThat(db.select(SINK_DEAD_LETTER.KAFKA_OFFSET, SINK_DEAD_LETTER.REASON).from(SINK_DEAD_LETTER)
                .orderBy(SINK_DEAD_LETTER.KAFKA_OFFSET).fetch())
                .satisfiesExactly(
                        r -> {
                            assertThat(r.value1()).isEqualTo(offset - 3);
                            assertThat(r.value2()).startsWith("refused by the database").contains("22");
                        },
                        r -> {
                            assertThat(r.value1()).isEqualTo(offset - 2);
                            assertThat(r.value2()).startsWith("refused by the database").contains("54000");
                        });
        assertThat(db.select(SINK_OFFSET.NEXT_OFFSET).from(SINK_OFFSET).fetchOne(SINK_OFFSET.NEXT_OFFSET)).isEqualTo(offset);
        assertThat(metrics.refusedRows.count()).isEqualTo(2);

        // The same refused total delivered again is set aside again (once per record), and nothing stops.
        write(nul, total(Granularity.HOUR, 2, 250, false));
        assertThat(db.fetchCount(SINK_DEAD_LETTER)).isEqualTo(3);
        assertThat(db.select(USAGE_TOTAL_HOURLY.COST_NANO_USD).from(USAGE_TOTAL_HOURLY).fetchOne(USAGE_TOTAL_HOURLY.COST_NANO_USD))
                .isEqualTo(250L);
    }

    private static UsageTotal withModel(UsageTotal t, String model) {
        return UsageTotal.newBuilder(t).setModel(model).build();
    }

    private void write(UsageTotal... totals) {
        List<ConsumerRecord<byte[], byte[]>> records = java.util.Arrays.stream(totals)
                .map(t -> new ConsumerRecord<>("usage-totals", 0, offset++, (byte[]) null, EventSerdes.usageTotal().encode(t)))
                .toList();
        writer.write(records, Map.of(new TopicPartition("usage-totals", 0), offset));
    }

    private static UsageTotal total(Granularity granularity, long revision, long cost, boolean isFinal) {
        Instant start = granularity == Granularity.HOUR ? Instant.parse("2026-11-05T10:00:00Z") : Instant.parse("2026-11-01T00:00:00Z");
        Instant end = granularity == Granularity.HOUR ? start.plusSeconds(3600) : Instant.parse("2026-12-01T00:00:00Z");
        return UsageTotal.newBuilder()
                .setUserId("alice").setTenantId("t").setModel("gpt-4o").setKeySource(KeySource.SERVICE_CREDIT)
                .setGranularity(granularity).setPeriodStart(start).setPeriodEnd(end)
                .setEventCount(revision).setSucceededCount(revision).setCostNanoUsd(cost)
                .setRevision(revision).setIsFinal(isFinal)
                .build();
    }
}
