package dev.tokenmeter.sink;

import org.jooq.DSLContext;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;

/**
 * Closes billing periods and books late usage; an idempotent job the app runs every
 * {@code PERIOD_CLOSE_INTERVAL} (ADR 0030).
 *
 * <p>One run, in one transaction under an advisory lock (two sinks never close the same month twice):
 * <ol>
 *   <li>creates a {@code billing_period} for every month with usage through next month, closing at the
 *       month's end plus the grace;</li>
 *   <li>closes every period whose {@code closes_at} has passed, oldest first: its
 *       {@code usage_total_monthly} rows become immutable {@code invoice_line} rows;</li>
 *   <li>for every closed month, compares the ledger with what its lines and earlier adjustments billed
 *       per (user, model, key source) and books any difference as an {@code invoice_adjustment} in the
 *       earliest open period after it. A closed line is never edited.</li>
 * </ol>
 * Running it again with nothing new changes nothing.
 */
public final class PeriodCloser {

    private static final Logger log = LoggerFactory.getLogger(PeriodCloser.class);

    public record Result(int periodsClosed, int invoiceLines, int adjustments) {
    }

    private final DSLContext db;
    private final Duration grace;

    public PeriodCloser(DSLContext db, Duration grace) {
        this.db = db;
        this.grace = grace;
    }

    public Result run(Instant now) {
        OffsetDateTime at = now.atOffset(ZoneOffset.UTC);
        LocalDate thisMonth = now.atZone(ZoneOffset.UTC).toLocalDate().withDayOfMonth(1);
        LocalDate nextMonth = thisMonth.plusMonths(1);
        Result result = db.transactionResult(cfg -> {
            DSLContext tx = DSL.using(cfg);
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('billing_period_close'))");
            tx.execute("""
                    INSERT INTO billing_period (billing_month, closes_at)
                    SELECT m::date, m + interval '1 month' + make_interval(secs => ?::bigint)
                    FROM generate_series(
                        (SELECT least(?::date, (SELECT min(billing_month) FROM usage_total_monthly),
                                               (SELECT min(billing_month) FROM usage_ledger))),
                        ?::date, interval '1 month') AS m
                    ON CONFLICT (billing_month) DO NOTHING""",
                    grace.toSeconds(), thisMonth, nextMonth);
            List<LocalDate> due = tx.fetch("""
                    SELECT billing_month FROM billing_period
                    WHERE closed_at IS NULL AND closes_at <= ?::timestamptz ORDER BY billing_month FOR UPDATE""", at)
                    .getValues(0, LocalDate.class);
            int lines = 0;
            for (LocalDate month : due) {
                lines += tx.execute("""
                        INSERT INTO invoice_line (billing_month, user_id, tenant_id, model, key_source, event_count,
                            prompt_tokens, cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd, total_revision)
                        SELECT billing_month, user_id, tenant_id, model, key_source, event_count, prompt_tokens,
                               cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd, revision
                        FROM usage_total_monthly WHERE billing_month = ?::date
                        ON CONFLICT (billing_month, user_id, model, key_source) DO NOTHING""", month);
                tx.execute("UPDATE billing_period SET closed_at = ?::timestamptz WHERE billing_month = ?::date", at, month);
            }
            int adjustments = tx.execute("""
                    INSERT INTO invoice_adjustment (billing_month, applies_to_month, user_id, tenant_id, model, key_source,
                        event_count, prompt_tokens, cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd)
                    WITH closed AS (
                        SELECT billing_month FROM billing_period WHERE closed_at IS NOT NULL
                    ), ledger AS (
                        SELECT billing_month AS month, user_id, model, key_source, max(tenant_id) AS tenant_id,
                               count(*) AS event_count, sum(prompt_tokens) AS prompt_tokens,
                               sum(cached_prompt_tokens) AS cached_prompt_tokens, sum(completion_tokens) AS completion_tokens,
                               sum(reasoning_tokens) AS reasoning_tokens, sum(cost_nano_usd) AS cost_nano_usd
                        FROM usage_ledger WHERE billing_month IN (SELECT billing_month FROM closed)
                        GROUP BY billing_month, user_id, model, key_source
                    ), booked AS (
                        SELECT month, user_id, model, key_source, max(tenant_id) AS tenant_id,
                               sum(event_count) AS event_count, sum(prompt_tokens) AS prompt_tokens,
                               sum(cached_prompt_tokens) AS cached_prompt_tokens, sum(completion_tokens) AS completion_tokens,
                               sum(reasoning_tokens) AS reasoning_tokens, sum(cost_nano_usd) AS cost_nano_usd
                        FROM (SELECT billing_month AS month, user_id, model, key_source, tenant_id, event_count, prompt_tokens,
                                     cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd FROM invoice_line
                              UNION ALL
                              SELECT applies_to_month, user_id, model, key_source, tenant_id, event_count, prompt_tokens,
                                     cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd FROM invoice_adjustment) b
                        GROUP BY month, user_id, model, key_source
                    ), delta AS (
                        SELECT month, user_id, model, key_source,
                               coalesce(l.tenant_id, b.tenant_id) AS tenant_id,
                               coalesce(l.event_count, 0) - coalesce(b.event_count, 0) AS event_count,
                               coalesce(l.prompt_tokens, 0) - coalesce(b.prompt_tokens, 0) AS prompt_tokens,
                               coalesce(l.cached_prompt_tokens, 0) - coalesce(b.cached_prompt_tokens, 0) AS cached_prompt_tokens,
                               coalesce(l.completion_tokens, 0) - coalesce(b.completion_tokens, 0) AS completion_tokens,
                               coalesce(l.reasoning_tokens, 0) - coalesce(b.reasoning_tokens, 0) AS reasoning_tokens,
                               coalesce(l.cost_nano_usd, 0) - coalesce(b.cost_nano_usd, 0) AS cost_nano_usd
                        FROM ledger l FULL JOIN booked b USING (month, user_id, model, key_source)
                    )
                    SELECT (SELECT min(p.billing_month) FROM billing_period p
                            WHERE p.closed_at IS NULL AND p.billing_month > d.month),
                           d.month, d.user_id, d.tenant_id, d.model, d.key_source, d.event_count, d.prompt_tokens,
                           d.cached_prompt_tokens, d.completion_tokens, d.reasoning_tokens, d.cost_nano_usd
                    FROM delta d
                    WHERE (d.event_count, d.prompt_tokens, d.cached_prompt_tokens, d.completion_tokens, d.reasoning_tokens,
                           d.cost_nano_usd) <> (0, 0, 0, 0, 0, 0)""");
            return new Result(due.size(), lines, adjustments);
        });
        if (result.periodsClosed() > 0 || result.adjustments() > 0) {
            log.info("billing periods closed: {} ({} invoice lines); adjustments booked: {}",
                    result.periodsClosed(), result.invoiceLines(), result.adjustments());
        }
        return result;
    }
}
