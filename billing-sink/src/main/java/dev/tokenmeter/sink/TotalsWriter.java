package dev.tokenmeter.sink;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.impl.DSL;

import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_HOURLY;
import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;

/**
 * Upserts hourly and monthly totals from the aggregator, guarded by revision: a stored row is replaced
 * only by a higher revision, so a redelivered or reordered older total never overwrites a newer one.
 * {@code is_final} is sticky. Positions are saved in the same transaction.
 */
final class TotalsWriter implements BatchWriter {

    private final DSLContext db;
    private final OffsetStore offsets;
    private final SinkMetrics metrics;

    TotalsWriter(DSLContext db, OffsetStore offsets, SinkMetrics metrics) {
        this.db = db;
        this.offsets = offsets;
        this.metrics = metrics;
    }

    @Override
    public void write(List<ConsumerRecord<byte[], byte[]>> records, Map<TopicPartition, Long> nextOffsets) {
        // Within a batch keep only the newest revision per total (one row per key per statement).
        Map<String, UsageTotal> hourly = new LinkedHashMap<>();
        Map<String, UsageTotal> monthly = new LinkedHashMap<>();
        List<DeadLetter> dead = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> record : records) {
            UsageTotal t;
            try {
                t = EventSerdes.usageTotal().decode(record.value());
            } catch (RuntimeException e) {
                dead.add(DeadLetter.of(record, "undecodable total: " + e.getMessage()));
                continue;
            }
            if (t.getCostNanoUsd() < 0 || t.getEventCount() < 0 || t.getRevision() < 1) {
                dead.add(DeadLetter.of(record, "invalid total: negative amounts or revision < 1"));
                continue;
            }
            String key = t.getUserId() + "|" + t.getModel() + "|" + t.getKeySource() + "|" + t.getPeriodStart().toEpochMilli();
            Map<String, UsageTotal> target = t.getGranularity() == Granularity.HOUR ? hourly : monthly;
            // Highest revision wins; final is sticky across the batch as it is in the table.
            target.merge(key, t, (a, b) -> {
                UsageTotal newer = b.getRevision() >= a.getRevision() ? b : a;
                return (a.getIsFinal() || b.getIsFinal()) && !newer.getIsFinal() ? withFinal(newer) : newer;
            });
        }
        db.transaction(cfg -> {
            DSLContext tx = DSL.using(cfg);
            upsertHourly(tx, hourly.values());
            upsertMonthly(tx, monthly.values());
            DeadLetter.insert(tx, dead);
            offsets.save(tx, nextOffsets);
        });
        metrics.totalRows.increment(hourly.size() + monthly.size());
        metrics.deadLetters.increment(dead.size());
    }

    private static UsageTotal withFinal(UsageTotal t) {
        UsageTotal copy = UsageTotal.newBuilder(t).build();
        copy.setIsFinal(true);
        return copy;
    }

    private static void upsertHourly(DSLContext tx, Iterable<UsageTotal> totals) {
        var t = USAGE_TOTAL_HOURLY;
        var insert = tx.insertInto(t, t.USER_ID, t.MODEL, t.KEY_SOURCE, t.HOUR_START, t.TENANT_ID, t.EVENT_COUNT, t.SUCCEEDED_COUNT,
                t.FAILED_COUNT, t.CANCELLED_COUNT, t.REJECTED_COUNT, t.PROMPT_TOKENS, t.CACHED_PROMPT_TOKENS, t.COMPLETION_TOKENS,
                t.REASONING_TOKENS, t.COST_NANO_USD, t.FIRST_EVENT_AT, t.LAST_EVENT_AT, t.REVISION, t.IS_FINAL);
        boolean any = false;
        for (UsageTotal u : totals) {
            any = true;
            insert = insert.values(u.getUserId(), u.getModel(), u.getKeySource().name(), LedgerRows.utc(u.getPeriodStart()),
                    u.getTenantId(), u.getEventCount(), u.getSucceededCount(), u.getFailedCount(), u.getCancelledCount(),
                    u.getRejectedCount(), u.getPromptTokens(), u.getCachedPromptTokens(), u.getCompletionTokens(),
                    u.getReasoningTokens(), u.getCostNanoUsd(), LedgerRows.utc(u.getFirstEventAt()),
                    LedgerRows.utc(u.getLastEventAt()), u.getRevision(), u.getIsFinal());
        }
        if (!any) {
            return;
        }
        insert.onConflict(t.USER_ID, t.MODEL, t.KEY_SOURCE, t.HOUR_START).doUpdate()
                .set(t.TENANT_ID, DSL.excluded(t.TENANT_ID))
                .set(t.EVENT_COUNT, DSL.excluded(t.EVENT_COUNT))
                .set(t.SUCCEEDED_COUNT, DSL.excluded(t.SUCCEEDED_COUNT))
                .set(t.FAILED_COUNT, DSL.excluded(t.FAILED_COUNT))
                .set(t.CANCELLED_COUNT, DSL.excluded(t.CANCELLED_COUNT))
                .set(t.REJECTED_COUNT, DSL.excluded(t.REJECTED_COUNT))
                .set(t.PROMPT_TOKENS, DSL.excluded(t.PROMPT_TOKENS))
                .set(t.CACHED_PROMPT_TOKENS, DSL.excluded(t.CACHED_PROMPT_TOKENS))
                .set(t.COMPLETION_TOKENS, DSL.excluded(t.COMPLETION_TOKENS))
                .set(t.REASONING_TOKENS, DSL.excluded(t.REASONING_TOKENS))
                .set(t.COST_NANO_USD, DSL.excluded(t.COST_NANO_USD))
                .set(t.FIRST_EVENT_AT, DSL.excluded(t.FIRST_EVENT_AT))
                .set(t.LAST_EVENT_AT, DSL.excluded(t.LAST_EVENT_AT))
                .set(t.REVISION, DSL.excluded(t.REVISION))
                .set(t.IS_FINAL, DSL.field(DSL.condition(t.IS_FINAL).or(DSL.condition(DSL.excluded(t.IS_FINAL)))))
                .set(t.UPDATED_AT, DSL.currentOffsetDateTime())
                .where(t.REVISION.lt(DSL.excluded(t.REVISION)))
                .execute();
        // A final marker for a revision already stored (e.g. the final copy of the last running total).
        // Handled by the OR above when the revision is higher; equal revisions only need the flag.
        for (UsageTotal u : totals) {
            if (u.getIsFinal()) {
                tx.update(t).set(t.IS_FINAL, true)
                        .where(t.USER_ID.eq(u.getUserId()), t.MODEL.eq(u.getModel()), t.KEY_SOURCE.eq(u.getKeySource().name()),
                                t.HOUR_START.eq(LedgerRows.utc(u.getPeriodStart())), t.REVISION.eq(u.getRevision()),
                                t.IS_FINAL.isFalse())
                        .execute();
            }
        }
    }

    private static void upsertMonthly(DSLContext tx, Iterable<UsageTotal> totals) {
        var t = USAGE_TOTAL_MONTHLY;
        var insert = tx.insertInto(t, t.USER_ID, t.MODEL, t.KEY_SOURCE, t.BILLING_MONTH, t.TENANT_ID, t.EVENT_COUNT, t.SUCCEEDED_COUNT,
                t.FAILED_COUNT, t.CANCELLED_COUNT, t.REJECTED_COUNT, t.PROMPT_TOKENS, t.CACHED_PROMPT_TOKENS, t.COMPLETION_TOKENS,
                t.REASONING_TOKENS, t.COST_NANO_USD, t.FIRST_EVENT_AT, t.LAST_EVENT_AT, t.REVISION, t.IS_FINAL);
        boolean any = false;
        for (UsageTotal u : totals) {
            any = true;
            insert = insert.values(u.getUserId(), u.getModel(), u.getKeySource().name(),
                    u.getPeriodStart().atZone(ZoneOffset.UTC).toLocalDate(),
                    u.getTenantId(), u.getEventCount(), u.getSucceededCount(), u.getFailedCount(), u.getCancelledCount(),
                    u.getRejectedCount(), u.getPromptTokens(), u.getCachedPromptTokens(), u.getCompletionTokens(),
                    u.getReasoningTokens(), u.getCostNanoUsd(), LedgerRows.utc(u.getFirstEventAt()),
                    LedgerRows.utc(u.getLastEventAt()), u.getRevision(), u.getIsFinal());
        }
        if (!any) {
            return;
        }
        insert.onConflict(t.USER_ID, t.MODEL, t.KEY_SOURCE, t.BILLING_MONTH).doUpdate()
                .set(t.TENANT_ID, DSL.excluded(t.TENANT_ID))
                .set(t.EVENT_COUNT, DSL.excluded(t.EVENT_COUNT))
                .set(t.SUCCEEDED_COUNT, DSL.excluded(t.SUCCEEDED_COUNT))
                .set(t.FAILED_COUNT, DSL.excluded(t.FAILED_COUNT))
                .set(t.CANCELLED_COUNT, DSL.excluded(t.CANCELLED_COUNT))
                .set(t.REJECTED_COUNT, DSL.excluded(t.REJECTED_COUNT))
                .set(t.PROMPT_TOKENS, DSL.excluded(t.PROMPT_TOKENS))
                .set(t.CACHED_PROMPT_TOKENS, DSL.excluded(t.CACHED_PROMPT_TOKENS))
                .set(t.COMPLETION_TOKENS, DSL.excluded(t.COMPLETION_TOKENS))
                .set(t.REASONING_TOKENS, DSL.excluded(t.REASONING_TOKENS))
                .set(t.COST_NANO_USD, DSL.excluded(t.COST_NANO_USD))
                .set(t.FIRST_EVENT_AT, DSL.excluded(t.FIRST_EVENT_AT))
                .set(t.LAST_EVENT_AT, DSL.excluded(t.LAST_EVENT_AT))
                .set(t.REVISION, DSL.excluded(t.REVISION))
                .set(t.IS_FINAL, DSL.field(DSL.condition(t.IS_FINAL).or(DSL.condition(DSL.excluded(t.IS_FINAL)))))
                .set(t.UPDATED_AT, DSL.currentOffsetDateTime())
                .where(t.REVISION.lt(DSL.excluded(t.REVISION)))
                .execute();
        for (UsageTotal u : totals) {
            if (u.getIsFinal()) {
                tx.update(t).set(t.IS_FINAL, true)
                        .where(t.USER_ID.eq(u.getUserId()), t.MODEL.eq(u.getModel()), t.KEY_SOURCE.eq(u.getKeySource().name()),
                                t.BILLING_MONTH.eq(u.getPeriodStart().atZone(ZoneOffset.UTC).toLocalDate()),
                                t.REVISION.eq(u.getRevision()), t.IS_FINAL.isFalse())
                        .execute();
            }
        }
    }
}
