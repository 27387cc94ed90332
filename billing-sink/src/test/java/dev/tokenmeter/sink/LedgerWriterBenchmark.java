package dev.tokenmeter.sink;

import dev.tokenmeter.db.jooq.tables.records.UsageLedgerRecord;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.PostgresEngine;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.conf.Settings;
import org.jooq.impl.DSL;
import org.postgresql.PGConnection;
import org.postgresql.ds.PGSimpleDataSource;

import java.io.StringReader;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Ledger rows per second through the sink's {@link LedgerWriter} (decode, validate, dedup guard, rows,
 * positions; one transaction per batch) next to, on the same Postgres in the same run, a raw COPY of
 * the same rows and a row-by-row JDBC insert. Not a test; run with
 * {@code ./mvnw -q -pl billing-sink -am test-compile exec:java -Dexec.classpathScope=test
 * -Dexec.mainClass=dev.tokenmeter.sink.LedgerWriterBenchmark -Dexec.args="200000 2000 3"} (rows, batch size, rounds).
 * Each contender writes into its own freshly migrated database; every contender runs three times and
 * the best run counts.
 */
public final class LedgerWriterBenchmark {

    public static void main(String[] args) throws Exception {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
        int batch = args.length > 1 ? Integer.parseInt(args[1]) : 2_000;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        Random random = new Random(30);
        List<UsageEvent> events = new ArrayList<>(rows);
        Instant base = Instant.parse("2026-11-01T00:00:00Z");
        for (int i = 0; i < rows; i++) {
            events.add(SinkFixture.event("user-" + random.nextInt(500), "gpt-4o-mini", KeySource.SERVICE_CREDIT,
                    base.plusMillis(i * 37L), random.nextInt(4000), random.nextInt(1000), random.nextLong(10_000_000)));
        }
        List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>(rows);
        for (int i = 0; i < rows; i++) {
            records.add(new ConsumerRecord<>("usage-events", 0, i, events.get(i).getUserId().getBytes(),
                    EventSerdes.usageEvent().encode(events.get(i))));
        }
        try (Engines engines = Engines.create(Backend.EMBEDDED)) {
            PostgresEngine pg = engines.postgres();
            double sink = 0, copy = 0, rowByRow = 0;
            for (int round = 1; round <= rounds; round++) {
                double s = rate(rows, () -> viaSink(pg, records, batch));
                double c = rate(rows, () -> viaCopy(pg, events, batch));
                double r = rate(rows, () -> rowByRow(pg, events, batch));
                System.out.printf("round %d: sink %,.0f rows/s, COPY %,.0f rows/s, row-by-row %,.0f rows/s%n", round, s, c, r);
                sink = Math.max(sink, s);
                copy = Math.max(copy, c);
                rowByRow = Math.max(rowByRow, r);
            }
            System.out.printf("best of %d, %,d rows, batches of %,d:%n  sink writer %,.0f rows/s%n  raw COPY    %,.0f rows/s%n"
                            + "  row-by-row  %,.0f rows/s%n  sink/COPY = %.0f%%, sink/row-by-row = %.1fx%n",
                    rounds, rows, batch, sink, copy, rowByRow, 100 * sink / copy, sink / rowByRow);
        }
    }

    interface Run {
        void run() throws Exception;
    }

    private static double rate(int rows, Run run) throws Exception {
        long start = System.nanoTime();
        run.run();
        return rows / ((System.nanoTime() - start) / 1e9);
    }

    private static PGSimpleDataSource dataSource(PostgresEngine pg) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(pg.createMigratedDatabase("bench"));
        ds.setUser(pg.user());
        ds.setPassword(pg.password());
        return ds;
    }

    /** The production path: LedgerWriter on one pooled-like connection source, a batch per transaction. */
    private static void viaSink(PostgresEngine pg, List<ConsumerRecord<byte[], byte[]>> records, int batch) {
        DSLContext db = DSL.using(dataSource(pg), SQLDialect.POSTGRES, new Settings().withExecuteLogging(false));
        LedgerWriter writer = new LedgerWriter(db, new OffsetStore("bench"), new SinkMetrics(new SimpleMeterRegistry()));
        for (int from = 0; from < records.size(); from += batch) {
            int to = Math.min(records.size(), from + batch);
            writer.write(records.subList(from, to), Map.of(new TopicPartition("usage-events", 0), (long) to));
        }
    }

    /** COPY ... FROM STDIN (text format) of the same rows straight into usage_ledger: no dedup guard, no positions. */
    private static void viaCopy(PostgresEngine pg, List<UsageEvent> events, int batch) throws Exception {
        try (Connection c = dataSource(pg).getConnection()) {
            c.setAutoCommit(false);
            var copy = c.unwrap(PGConnection.class).getCopyAPI();
            for (int from = 0; from < events.size(); from += batch) {
                StringBuilder sb = new StringBuilder();
                for (UsageEvent e : events.subList(from, Math.min(events.size(), from + batch))) {
                    UsageLedgerRecord r = LedgerRows.toRecord(e);
                    Object[] values = r.intoArray();
                    for (int i = 0; i < values.length - 1; i++) { // ingested_at: default
                        if (i > 0) {
                            sb.append('\t');
                        }
                        sb.append(values[i] == null ? "\\N" : copyText(values[i]));
                    }
                    sb.append('\n');
                }
                copy.copyIn("COPY usage_ledger (" + columns() + ") FROM STDIN", new StringReader(sb.toString()));
                c.commit();
            }
        }
    }

    /** One INSERT statement execution per row, a transaction per batch. */
    private static void rowByRow(PostgresEngine pg, List<UsageEvent> events, int batch) throws Exception {
        try (Connection c = dataSource(pg).getConnection()) {
            c.setAutoCommit(false);
            String cols = columns();
            String marks = "?" + ",?".repeat(cols.split(",").length - 1);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO usage_ledger (" + cols + ") VALUES (" + marks + ")")) {
                int n = 0;
                for (UsageEvent e : events) {
                    Object[] values = LedgerRows.toRecord(e).intoArray();
                    for (int i = 0; i < values.length - 1; i++) {
                        Object v = values[i];
                        if (v instanceof org.jooq.JSONB j) {
                            ps.setObject(i + 1, j.data(), java.sql.Types.OTHER);
                        } else {
                            ps.setObject(i + 1, v);
                        }
                    }
                    ps.executeUpdate();
                    if (++n % batch == 0) {
                        c.commit();
                    }
                }
                c.commit();
            }
        }
    }

    private static String columns() {
        var fields = dev.tokenmeter.db.jooq.Tables.USAGE_LEDGER.fields();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < fields.length - 1; i++) {
            sb.append(i == 0 ? "" : ",").append(fields[i].getName());
        }
        return sb.toString();
    }

    private static String copyText(Object v) {
        String s = v instanceof OffsetDateTime t ? t.toString() : v.toString();
        return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n");
    }
}
