package dev.tokenmeter.sink;

import dev.tokenmeter.events.UsageEvent;
import org.jooq.Field;
import org.postgresql.PGConnection;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Instant;
import java.time.LocalDate;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.stream.Collectors;

import static dev.tokenmeter.db.jooq.Tables.USAGE_LEDGER;

/**
 * Ledger rows in Postgres' binary COPY format, encoded straight from the decoded events (ADR 0030).
 *
 * <p>Binary rather than text: every value is length-prefixed, so a tab, newline, backslash or any other
 * character in a string needs no escaping and cannot shift a column; and the server reads uuids, dates
 * and timestamps as fixed-width integers instead of parsing text. The column list comes from the
 * generated {@code USAGE_LEDGER} fields, each paired with the value it gets; {@code ingested_at} is left
 * to its default like on every other write path.
 */
final class LedgerCopy {

    /** Days from 1970-01-01 to Postgres' epoch 2000-01-01. */
    private static final long PG_EPOCH_DAY = LocalDate.of(2000, 1, 1).toEpochDay();
    /** Microseconds from 1970-01-01T00:00Z to 2000-01-01T00:00Z. */
    private static final long PG_EPOCH_MICROS = Instant.parse("2000-01-01T00:00:00Z").getEpochSecond() * 1_000_000L;
    private static final byte[] HEADER = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', (byte) 0xff, '\r', '\n', 0,
            0, 0, 0, 0, // flags: no OIDs
            0, 0, 0, 0}; // no header extension
    /** jsonb's binary input: a version byte, then the JSON text. */
    private static final byte JSONB_VERSION = 1;

    private interface Value {
        void write(Rows out, UsageEvent e);
    }

    private record Column(Field<?> field, Value value) {
    }

    private static final List<Column> COLUMNS = List.of(
            new Column(USAGE_LEDGER.EVENT_ID, (o, e) -> o.uuid(UUID.fromString(e.getEventId()))),
            new Column(USAGE_LEDGER.BILLING_MONTH, (o, e) -> o.date(LedgerRows.billingMonth(e.getOccurredAt()))),
            new Column(USAGE_LEDGER.OCCURRED_AT, (o, e) -> o.timestamp(e.getOccurredAt())),
            new Column(USAGE_LEDGER.RECEIVED_AT, (o, e) -> o.timestamp(e.getReceivedAt())),
            new Column(USAGE_LEDGER.TENANT_ID, (o, e) -> o.text(e.getTenantId())),
            new Column(USAGE_LEDGER.USER_ID, (o, e) -> o.text(e.getUserId())),
            new Column(USAGE_LEDGER.API_KEY_ID, (o, e) -> o.text(e.getApiKeyId())),
            new Column(USAGE_LEDGER.KEY_SOURCE, (o, e) -> o.text(e.getKeySource().name())),
            new Column(USAGE_LEDGER.PROVIDER, (o, e) -> o.text(e.getProvider())),
            new Column(USAGE_LEDGER.MODEL, (o, e) -> o.text(e.getModel())),
            new Column(USAGE_LEDGER.ENDPOINT, (o, e) -> o.text(e.getEndpoint())),
            new Column(USAGE_LEDGER.UPSTREAM_REQUEST_ID, (o, e) -> o.text(e.getUpstreamRequestId())),
            new Column(USAGE_LEDGER.OUTCOME, (o, e) -> o.text(e.getOutcome().name())),
            new Column(USAGE_LEDGER.HTTP_STATUS, (o, e) -> o.int4(e.getHttpStatus())),
            new Column(USAGE_LEDGER.PROMPT_TOKENS, (o, e) -> o.int8(e.getPromptTokens())),
            new Column(USAGE_LEDGER.CACHED_PROMPT_TOKENS, (o, e) -> o.int8(e.getCachedPromptTokens())),
            new Column(USAGE_LEDGER.COMPLETION_TOKENS, (o, e) -> o.int8(e.getCompletionTokens())),
            new Column(USAGE_LEDGER.REASONING_TOKENS, (o, e) -> o.int8(e.getReasoningTokens())),
            new Column(USAGE_LEDGER.COST_NANO_USD, (o, e) -> o.int8(e.getCostNanoUsd())),
            new Column(USAGE_LEDGER.PRICE_VERSION, (o, e) -> o.text(e.getPriceVersion())),
            new Column(USAGE_LEDGER.USAGE_SOURCE, (o, e) -> o.text(e.getUsageSource().name())),
            new Column(USAGE_LEDGER.STREAMED, (o, e) -> o.bool(e.getStreamed())),
            new Column(USAGE_LEDGER.CACHE_HIT, (o, e) -> o.bool(e.getCacheHit())),
            new Column(USAGE_LEDGER.RESERVATION_ID, (o, e) -> o.text(e.getReservationId())),
            new Column(USAGE_LEDGER.LATENCY_MS, (o, e) -> o.int8(e.getLatencyMs())),
            new Column(USAGE_LEDGER.EDGE_INSTANCE, (o, e) -> o.text(e.getEdgeInstance())),
            new Column(USAGE_LEDGER.ATTRIBUTES, (o, e) -> o.jsonb(LedgerRows.json(e.getAttributes()))),
            new Column(USAGE_LEDGER.ANSWERED_MODEL, (o, e) -> o.text(e.getAnsweredModel())),
            // A v1 event has no tier: it was priced at the standard tier, the only one there was (ADR 0068).
            new Column(USAGE_LEDGER.SERVICE_TIER, (o, e) -> o.text(LedgerRows.serviceTier(e))),
            // v3 (ADR 0074/0075): a v1/v2 event was no cache hit and cost the upstream what it was billed.
            new Column(USAGE_LEDGER.RESPONSE_CACHE_HIT, (o, e) -> o.bool(e.getResponseCacheHit())),
            new Column(USAGE_LEDGER.RESPONSE_CACHE_AGE_MS, (o, e) -> o.int8OrNull(e.getResponseCacheAgeMs())),
            new Column(USAGE_LEDGER.UPSTREAM_COST_NANO_USD, (o, e) -> o.int8(LedgerRows.upstreamCost(e))),
            // v4 (ADR 0078): a v1..v3 event has no project and no labels ('{}').
            new Column(USAGE_LEDGER.PROJECT, (o, e) -> o.text(e.getProject())),
            new Column(USAGE_LEDGER.LABELS, (o, e) -> o.jsonb(LedgerRows.json(e.getLabels()))));

    /** The columns in the order the rows carry them: every ledger column but ingested_at. */
    private static final String STATEMENT = "COPY " + USAGE_LEDGER.getName() + " ("
            + COLUMNS.stream().map(Column::field).map(f -> '"' + f.getName() + '"').collect(Collectors.joining(", "))
            + ") FROM STDIN (FORMAT binary)";

    private LedgerCopy() {
    }

    /** A COPY stream under construction: the header, then one tuple per {@link #add}. */
    static final class Rows {

        private byte[] buffer;
        private int size;
        private int count;

        Rows(int expectedRows) {
            buffer = new byte[Math.max(1024, expectedRows * 320)];
            put(HEADER, 0, HEADER.length);
        }

        Rows add(UsageEvent e) {
            int16(COLUMNS.size());
            for (Column c : COLUMNS) {
                c.value().write(this, e);
            }
            count++;
            return this;
        }

        int count() {
            return count;
        }

        /** Sends the rows with COPY on this connection (inside the caller's transaction); returns the rows copied. */
        long copyInto(Connection connection) throws SQLException, IOException {
            byte[] stream = Arrays.copyOf(buffer, size + 2);
            stream[size] = (byte) 0xff; // trailer: a field count of -1
            stream[size + 1] = (byte) 0xff;
            return connection.unwrap(PGConnection.class).getCopyAPI()
                    .copyIn(STATEMENT, new ByteArrayInputStream(stream), 64 * 1024);
        }

        private void uuid(UUID id) {
            int32(16);
            int64(id.getMostSignificantBits());
            int64(id.getLeastSignificantBits());
        }

        private void date(LocalDate day) {
            int32(4);
            int32(Math.toIntExact(day.toEpochDay() - PG_EPOCH_DAY));
        }

        /** timestamptz: microseconds since 2000-01-01T00:00Z (the events carry milliseconds, so this is exact). */
        private void timestamp(Instant t) {
            int32(8);
            int64(Math.addExact(Math.multiplyExact(t.getEpochSecond(), 1_000_000L), t.getNano() / 1_000) - PG_EPOCH_MICROS);
        }

        private void text(String s) {
            if (s == null) {
                int32(-1);
                return;
            }
            byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
            int32(utf8.length);
            put(utf8, 0, utf8.length);
        }

        private void jsonb(String json) {
            byte[] utf8 = json.getBytes(StandardCharsets.UTF_8);
            int32(utf8.length + 1);
            ensure(1);
            buffer[size++] = JSONB_VERSION;
            put(utf8, 0, utf8.length);
        }

        private void int4(int v) {
            int32(4);
            int32(v);
        }

        private void int8(long v) {
            int32(8);
            int64(v);
        }

        /** A nullable bigint: SQL NULL for null. */
        private void int8OrNull(Long v) {
            if (v == null) {
                int32(-1);
                return;
            }
            int8(v);
        }

        private void bool(boolean v) {
            int32(1);
            ensure(1);
            buffer[size++] = (byte) (v ? 1 : 0);
        }

        private void int16(int v) {
            ensure(2);
            buffer[size++] = (byte) (v >>> 8);
            buffer[size++] = (byte) v;
        }

        private void int32(int v) {
            ensure(4);
            buffer[size++] = (byte) (v >>> 24);
            buffer[size++] = (byte) (v >>> 16);
            buffer[size++] = (byte) (v >>> 8);
            buffer[size++] = (byte) v;
        }

        private void int64(long v) {
            int32((int) (v >>> 32));
            int32((int) v);
        }

        private void put(byte[] bytes, int from, int length) {
            ensure(length);
            System.arraycopy(bytes, from, buffer, size, length);
            size += length;
        }

        private void ensure(int more) {
            if (size + more > buffer.length) {
                buffer = Arrays.copyOf(buffer, Math.max(buffer.length * 2, size + more));
            }
        }
    }
}
