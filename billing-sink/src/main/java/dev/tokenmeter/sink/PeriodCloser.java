package dev.tokenmeter.sink;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.jooq.exception.DataAccessException;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
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
 *       earliest open period after it. A closed line is never edited. A user-month whose difference the
 *       database refuses (its sums overflow a bigint) is left out and reported — in
 *       {@code period_close_failure}, the metric {@code sink_period_close_failures} and the log — and every
 *       other user-month is booked (issue 14, ADR 0055); it is tried again on every run.</li>
 * </ol>
 * Running it again with nothing new changes nothing.
 */
public final class PeriodCloser {

    private static final Logger log = LoggerFactory.getLogger(PeriodCloser.class);

    /** {@code unbookable}: user-months with a difference that could not be booked (see {@code period_close_failure}). */
    public record Result(int periodsClosed, int invoiceLines, int adjustments, int unbookable) {
    }

    /**
     * Per (month, user, model, key source) of every closed month: the ledger minus what its lines and earlier
     * adjustments billed. Sums are numeric: one that does not fit in a bigint fails only where it is stored.
     */
    private static final String DELTAS = """
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
            """;

    private static final String NON_ZERO = """
            WHERE (d.event_count, d.prompt_tokens, d.cached_prompt_tokens, d.completion_tokens, d.reasoning_tokens,
                   d.cost_nano_usd) <> (0, 0, 0, 0, 0, 0)
            """;

    /** Books each non-zero difference as an adjustment in the earliest open period after its month. */
    private static final String BOOK_ADJUSTMENTS = """
            INSERT INTO invoice_adjustment (billing_month, applies_to_month, user_id, tenant_id, model, key_source,
                event_count, prompt_tokens, cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd)
            """ + DELTAS + """
            SELECT (SELECT min(p.billing_month) FROM billing_period p WHERE p.closed_at IS NULL AND p.billing_month > d.month),
                   d.month, d.user_id, d.tenant_id, d.model, d.key_source, d.event_count, d.prompt_tokens,
                   d.cached_prompt_tokens, d.completion_tokens, d.reasoning_tokens, d.cost_nano_usd
            FROM delta d
            """ + NON_ZERO;

    /** The same for one user-month: after a refusal, each is booked on its own. */
    private static final String BOOK_ADJUSTMENTS_OF_USER_MONTH = BOOK_ADJUSTMENTS + "AND d.month = ?::date AND d.user_id = ?";

    /** The user-months with a difference to book. */
    private static final String USER_MONTHS_TO_ADJUST = DELTAS + "SELECT DISTINCT d.month, d.user_id FROM delta d\n"
            + NON_ZERO + "ORDER BY 1, 2";

    private final DSLContext db;
    private final Duration grace;
    private final Counter failures;

    public PeriodCloser(DSLContext db, Duration grace) {
        this(db, grace, new SimpleMeterRegistry());
    }

    /** Counts the user-months it could not book in {@code sink_period_close_failures} of the registry. */
    public PeriodCloser(DSLContext db, Duration grace, MeterRegistry registry) {
        this.db = db;
        this.grace = grace;
        this.failures = Counter.builder("sink_period_close_failures")
                .description("User-months the period closer could not book on a run (see period_close_failure)").register(registry);
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
            List<Unbookable> unbookable = new ArrayList<>();
            int adjustments = bookAdjustments(tx, unbookable);
            for (Unbookable u : unbookable) {
                tx.execute("""
                        INSERT INTO period_close_failure (billing_month, user_id, reason) VALUES (?::date, ?, ?)
                        ON CONFLICT (billing_month, user_id) DO UPDATE SET reason = excluded.reason,
                            last_failed_at = now(), failures = period_close_failure.failures + 1""",
                        u.month(), u.userId(), u.reason());
            }
            return new Result(due.size(), lines, adjustments, unbookable.size());
        });
        failures.increment(result.unbookable());
        if (result.periodsClosed() > 0 || result.adjustments() > 0 || result.unbookable() > 0) {
            log.info("billing periods closed: {} ({} invoice lines); adjustments booked: {}; user-months not bookable: {}",
                    result.periodsClosed(), result.invoiceLines(), result.adjustments(), result.unbookable());
        }
        return result;
    }

    private record Unbookable(LocalDate month, String userId, String reason) {
    }

    /**
     * Books every difference in one statement, in a savepoint. When the database refuses a row (a sum that
     * does not fit in a bigint), books each user-month on its own instead, each in its own savepoint, and
     * collects the ones it could not book: one user-month never stops the others (ADR 0055).
     */
    private static int bookAdjustments(DSLContext tx, List<Unbookable> unbookable) {
        try {
            return tx.transactionResult(all -> DSL.using(all).execute(BOOK_ADJUSTMENTS));
        } catch (DataAccessException e) {
            if (!Refusals.isRowsFault(e)) {
                throw e;
            }
            log.warn("the database refused an adjustment ({}); booking user-month by user-month", Refusals.reason(e));
        }
        int booked = 0;
        for (Record userMonth : tx.fetch(USER_MONTHS_TO_ADJUST)) {
            LocalDate month = userMonth.get(0, LocalDate.class);
            String userId = userMonth.get(1, String.class);
            try {
                booked += tx.transactionResult(one -> DSL.using(one).execute(BOOK_ADJUSTMENTS_OF_USER_MONTH, month, userId));
            } catch (DataAccessException e) {
                if (!Refusals.isRowsFault(e)) {
                    throw e;
                }
                String reason = Refusals.reason(e);
                log.error("period closer: cannot book the adjustment of user {} for {} ({}); every other user-month is booked;"
                        + " see period_close_failure", userId, month, reason);
                unbookable.add(new Unbookable(month, userId, reason.length() > 4000 ? reason.substring(0, 4000) : reason));
            }
        }
        return booked;
    }
}
