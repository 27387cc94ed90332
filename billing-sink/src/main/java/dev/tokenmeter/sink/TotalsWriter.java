package dev.tokenmeter.sink;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import org.jooq.DSLContext;
import org.jooq.Field;
import org.jooq.Record;
import org.jooq.Table;
import org.jooq.impl.DSL;

import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_HOURLY;
import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;

/**
 * Upserts hourly and monthly totals from the aggregator, guarded by revision: a stored row is replaced
 * only by a higher revision, so a redelivered or reordered older total never overwrites a newer one.
 * {@code is_final} is sticky. Positions are saved in the same transaction. A total the database refuses
 * for good (a model name with a nul character, or too long for the primary key) is set aside to
 * {@code sink_dead_letter} with the reason and the rest of the batch is written ({@link Refusals}, ADR 0055).
 */
final class TotalsWriter extends RevisionedRowWriter<UsageTotal> {

    TotalsWriter(DSLContext db, OffsetStore offsets, SinkMetrics metrics) {
        super(db, offsets, metrics, "total");
    }

    @Override
    UsageTotal decode(byte[] value) {
        return EventSerdes.usageTotal().decode(value);
    }

    @Override
    String problem(UsageTotal t) {
        return t.getCostNanoUsd() < 0 || t.getEventCount() < 0 || t.getRevision() < 1
                ? "negative amounts or revision < 1" : null;
    }

    @Override
    String key(UsageTotal t) {
        return t.getGranularity() + "|" + t.getUserId() + "|" + t.getModel() + "|" + t.getKeySource()
                + "|" + t.getPeriodStart().toEpochMilli();
    }

    /** Highest revision wins; final is sticky across the batch as it is in the table. */
    @Override
    UsageTotal newer(UsageTotal a, UsageTotal b) {
        UsageTotal newer = b.getRevision() >= a.getRevision() ? b : a;
        return (a.getIsFinal() || b.getIsFinal()) && !newer.getIsFinal() ? withFinal(newer) : newer;
    }

    /** Upserts the hourly and the monthly rows among these. */
    @Override
    void upsert(DSLContext tx, List<UsageTotal> rows) {
        List<UsageTotal> hourly = new ArrayList<>();
        List<UsageTotal> monthly = new ArrayList<>();
        for (UsageTotal t : rows) {
            (t.getGranularity() == Granularity.HOUR ? hourly : monthly).add(t);
        }
        upsertHourly(tx, hourly);
        upsertMonthly(tx, monthly);
    }

    private static UsageTotal withFinal(UsageTotal t) {
        UsageTotal copy = UsageTotal.newBuilder(t).build();
        copy.setIsFinal(true);
        return copy;
    }

    private static void upsertHourly(DSLContext tx, Iterable<UsageTotal> totals) {
        upsert(tx, USAGE_TOTAL_HOURLY, USAGE_TOTAL_HOURLY.HOUR_START, u -> LedgerRows.utc(u.getPeriodStart()), totals);
    }

    private static void upsertMonthly(DSLContext tx, Iterable<UsageTotal> totals) {
        upsert(tx, USAGE_TOTAL_MONTHLY, USAGE_TOTAL_MONTHLY.BILLING_MONTH,
                u -> u.getPeriodStart().atZone(ZoneOffset.UTC).toLocalDate(), totals);
    }

    /**
     * One multi-row upsert into either totals table; they share every column but the period's, which
     * is {@code hour_start} (timestamptz) or {@code billing_month} (date).
     */
    private static <R extends Record, P> void upsert(DSLContext tx, Table<R> table, Field<P> period,
                                                     Function<UsageTotal, P> periodOf, Iterable<UsageTotal> totals) {
        List<Field<?>> keys = List.of(col(table, "user_id"), col(table, "model"), col(table, "key_source"), period);
        List<String> values = List.of("tenant_id", "event_count", "succeeded_count", "failed_count", "cancelled_count",
                "rejected_count", "prompt_tokens", "cached_prompt_tokens", "completion_tokens", "reasoning_tokens",
                "cost_nano_usd", "first_event_at", "last_event_at", "revision");
        List<Field<?>> columns = new ArrayList<>(keys);
        values.forEach(v -> columns.add(col(table, v)));
        Field<Boolean> isFinal = table.field("is_final", Boolean.class);
        Field<Long> revision = table.field("revision", Long.class);
        columns.add(isFinal);

        var insert = tx.insertInto(table, columns);
        List<UsageTotal> finals = new ArrayList<>();
        boolean any = false;
        for (UsageTotal u : totals) {
            any = true;
            insert = insert.values(u.getUserId(), u.getModel(), u.getKeySource().name(), periodOf.apply(u),
                    u.getTenantId(), u.getEventCount(), u.getSucceededCount(), u.getFailedCount(), u.getCancelledCount(),
                    u.getRejectedCount(), u.getPromptTokens(), u.getCachedPromptTokens(), u.getCompletionTokens(),
                    u.getReasoningTokens(), u.getCostNanoUsd(), LedgerRows.utc(u.getFirstEventAt()),
                    LedgerRows.utc(u.getLastEventAt()), u.getRevision(), u.getIsFinal());
            if (u.getIsFinal()) {
                finals.add(u);
            }
        }
        if (!any) {
            return;
        }
        Map<Field<?>, Object> updates = new LinkedHashMap<>();
        values.forEach(v -> updates.put(col(table, v), DSL.excluded(col(table, v))));
        // is_final is sticky: once a period was final it stays final.
        updates.put(isFinal, DSL.field(DSL.condition(isFinal).or(DSL.condition(DSL.excluded(isFinal)))));
        updates.put(table.field("updated_at"), DSL.currentOffsetDateTime());
        insert.onConflict(keys).doUpdate().set(updates).where(revision.lt(DSL.excluded(revision))).execute();

        // The final copy of a total whose revision is already stored only needs the flag.
        for (UsageTotal u : finals) {
            tx.update(table).set(isFinal, true)
                    .where(table.field("user_id", String.class).eq(u.getUserId()),
                            table.field("model", String.class).eq(u.getModel()),
                            table.field("key_source", String.class).eq(u.getKeySource().name()),
                            period.eq(periodOf.apply(u)), revision.eq(u.getRevision()), isFinal.isFalse())
                    .execute();
        }
    }
}
