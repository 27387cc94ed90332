package dev.tokenmeter.sink;

import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.db.jooq.tables.records.UsageLedgerRecord;
import com.zaxxer.hikari.HikariDataSource;
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

import java.io.StringReader;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.PreparedStatement;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Ledger rows per second through the sink's {@link LedgerWriter} (decode, validate, dedup guard, rows,
 * positions; one transaction per batch, on the production connection pool) next to, on the same Postgres
 * in the same run, a raw COPY of the same rows straight into {@code usage_ledger} (binary and text format;
 * the faster one is the baseline) and a row-by-row JDBC insert. Not a test; run with
 * {@code bin/benchmark billing-sink dev.tokenmeter.sink.LedgerWriterBenchmark 200000 2000 3} (rows, batch
 * size, rounds). Each contender writes into its own freshly migrated database, created before its clock
 * starts; every connection runs with {@code synchronous_commit=on} (production's default; the embedded
 * Postgres turns it off server-wide), and every contender commits once per batch. Best of the rounds.
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
            double sink = 0, copyBinary = 0, copyText = 0, rowByRow = 0;
            for (int round = 1; round <= rounds; round++) {
                double s = rate(pg, rows, url -> viaSink(pg, url, records, batch));
                double cb = rate(pg, rows, url -> viaCopyBinary(pg, url, events, batch));
                double ct = rate(pg, rows, url -> viaCopyText(pg, url, events, batch));
                double r = rate(pg, rows, url -> rowByRow(pg, url, events, batch));
                System.out.printf("round %d: sink %,.0f rows/s, COPY binary %,.0f rows/s, COPY text %,.0f rows/s, row-by-row %,.0f rows/s%n",
                        round, s, cb, ct, r);
                sink = Math.max(sink, s);
                copyBinary = Math.max(copyBinary, cb);
                copyText = Math.max(copyText, ct);
                rowByRow = Math.max(rowByRow, r);
            }
            double copy = Math.max(copyBinary, copyText);
            System.out.printf("best of %d, %,d rows, batches of %,d:%n  sink writer  %,.0f rows/s%n  COPY binary  %,.0f rows/s%n"
                            + "  COPY text    %,.0f rows/s%n  row-by-row   %,.0f rows/s%n  sink/COPY = %.0f%%, sink/row-by-row = %.1fx%n",
                    rounds, rows, batch, sink, copyBinary, copyText, rowByRow, 100 * sink / copy, sink / rowByRow);
        }
    }

    interface Run {
        void run(String jdbcUrl) throws Exception;
    }

    /** Times one contender on a new database, then checks it wrote every row (outside the clock). */
    private static double rate(PostgresEngine pg, int rows, Run run) throws Exception {
        String url = pg.createMigratedDatabase("bench") + "?options=-c%20synchronous_commit%3Don";
        long start = System.nanoTime();
        run.run(url);
        double rate = rows / ((System.nanoTime() - start) / 1e9);
        try (Connection c = connect(pg, url); var count = c.createStatement().executeQuery("SELECT count(*) FROM usage_ledger")) {
            count.next();
            if (count.getLong(1) != rows) {
                throw new IllegalStateException("a contender wrote " + count.getLong(1) + " rows, not " + rows);
            }
        }
        return rate;
    }

    private static Connection connect(PostgresEngine pg, String url) throws SQLException {
        return DriverManager.getConnection(url, pg.user(), pg.password());
    }

    /** The production path: LedgerWriter on the production connection pool, a batch per transaction. */
    private static void viaSink(PostgresEngine pg, String url, List<ConsumerRecord<byte[], byte[]>> records, int batch) {
        // As deployed: the sink's own role (ADR 0060), not the schema's owner.
        DatabaseLogin sinkLogin = pg.login(ServiceLogins.SINK);
        BillingSinkConfig config = BillingSinkConfig.fromEnv(Map.of("DATABASE_URL", url, "DATABASE_USER", sinkLogin.user(),
                "DATABASE_PASSWORD", sinkLogin.password(), "INSTANCE_ID", "bench"));
        try (HikariDataSource pool = BillingSinkApp.dataSource(config)) {
            DSLContext db = DSL.using(pool, SQLDialect.POSTGRES, new Settings().withExecuteLogging(false));
            LedgerWriter writer = new LedgerWriter(db, new OffsetStore("bench"), new SinkMetrics(new SimpleMeterRegistry()));
            for (int from = 0; from < records.size(); from += batch) {
                int to = Math.min(records.size(), from + batch);
                writer.write(records.subList(from, to), Map.of(new TopicPartition("usage-events", 0), (long) to));
            }
        }
    }

    /** COPY ... FROM STDIN (FORMAT binary) of the same rows straight into usage_ledger: no dedup guard, no positions. */
    private static void viaCopyBinary(PostgresEngine pg, String url, List<UsageEvent> events, int batch) throws Exception {
        try (Connection c = connect(pg, url)) {
            c.setAutoCommit(false);
            for (int from = 0; from < events.size(); from += batch) {
                List<UsageEvent> chunk = events.subList(from, Math.min(events.size(), from + batch));
                LedgerCopy.Rows rows = new LedgerCopy.Rows(chunk.size());
                chunk.forEach(rows::add);
                rows.copyInto(c);
                c.commit();
            }
        }
    }

    /** COPY ... FROM STDIN (text format) of the same rows straight into usage_ledger: no dedup guard, no positions. */
    private static void viaCopyText(PostgresEngine pg, String url, List<UsageEvent> events, int batch) throws Exception {
        try (Connection c = connect(pg, url)) {
            c.setAutoCommit(false);
            var copy = c.unwrap(PGConnection.class).getCopyAPI();
            for (int from = 0; from < events.size(); from += batch) {
                StringBuilder sb = new StringBuilder();
                for (UsageEvent e : events.subList(from, Math.min(events.size(), from + batch))) {
                    UsageLedgerRecord r = LedgerRecords.of(e);
                    Object[] values = r.intoArray();
                    for (int i = 0; i < values.length - 1; i++) { // ingested_at: default
                        if (i > 0) {
                            sb.append('\t');
                        }
                        sb.append(values[i] == null ? "\\N" : textValue(values[i]));
                    }
                    sb.append('\n');
                }
                copy.copyIn("COPY usage_ledger (" + columns() + ") FROM STDIN", new StringReader(sb.toString()));
                c.commit();
            }
        }
    }

    /** One INSERT statement execution per row, a transaction per batch. */
    private static void rowByRow(PostgresEngine pg, String url, List<UsageEvent> events, int batch) throws Exception {
        try (Connection c = connect(pg, url)) {
            c.setAutoCommit(false);
            String cols = columns();
            String marks = "?" + ",?".repeat(cols.split(",").length - 1);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO usage_ledger (" + cols + ") VALUES (" + marks + ")")) {
                int n = 0;
                for (UsageEvent e : events) {
                    Object[] values = LedgerRecords.of(e).intoArray();
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

    private static String textValue(Object v) {
        String s = v instanceof OffsetDateTime t ? t.toString() : v.toString();
        return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r");
    }
}
