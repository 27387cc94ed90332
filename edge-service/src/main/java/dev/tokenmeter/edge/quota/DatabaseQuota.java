package dev.tokenmeter.edge.quota;

import static dev.tokenmeter.db.jooq.Tables.QUOTA_DB_MONTH;
import static dev.tokenmeter.db.jooq.Tables.QUOTA_DB_RATE;
import static dev.tokenmeter.db.jooq.Tables.QUOTA_DB_RESERVATION;
import static dev.tokenmeter.db.jooq.Tables.USAGE_LEDGER;
import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;

import dev.tokenmeter.edge.account.Account;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.LocalDate;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/**
 * The FAIL_TO_DATABASE store (ADR 0072): reserve, settle, release and expiry in Postgres rows with the rules of the
 * Lua scripts, while Redis is unavailable. Each operation is one transaction that first locks the user's month row
 * ({@code quota_db_month}, {@code SELECT … FOR UPDATE}), so one user's decisions are serial across every edge
 * process and the credit check is exact: concurrent reserves never spend past the credit (the Redis script's
 * bound is "at most one estimate"; here it is none). Differences from the scripts, on purpose: rate limits are a
 * fixed 60 s window per user and per key instead of GCRA (a caller may get up to twice a limit across a window's
 * edge); no 50/80/100 % thresholds or soft-limit state are reported (the aggregator's alerts from billed usage
 * still come); the month's settled usage is Postgres's {@code usage_total_monthly} raised by what was settled
 * here, so reservations still open in Redis when it went away are not seen (they are bounded by the calls in
 * flight at that moment).
 *
 * <p>{@link #handOver} gives Redis what was decided here (settles since the last handover, open and expired
 * reservations) before Redis answers again; {@link #baselineFloor} raises a Redis rebuild to what was counted here.
 */
final class DatabaseQuota {

    /** The four rate limits of one caller: the user's and the API key's, requests and tokens per minute. */
    record Limits(long userRpm, long userTpm, long keyRpm, long keyTpm) {}

    /** One user's month as Redis must take it over: settles since the last handover and the open/expired reservations. */
    record Handover(String userId, YearMonth month, long seq, long settledNanoUsd, long personalNanoUsd,
                    List<HandedReservation> reservations) {}

    record HandedReservation(String id, String state, String route, long estimateNanoUsd, long estimateTokens, long deadlineMs) {}

    private static final long WINDOW_MS = 60_000;
    private static final String USER_SCOPE = "";

    private final DSLContext db;
    private final long reservationTtlMs;
    private final long retentionMs;

    DatabaseQuota(DataSource dataSource, Duration reservationTtl, Duration retention) {
        this.db = DSL.using(Objects.requireNonNull(dataSource, "dataSource"), SQLDialect.POSTGRES);
        this.reservationTtlMs = reservationTtl.toMillis();
        this.retentionMs = retention.toMillis();
    }

    // ------------------------------------------------------------------ reserve

    /** Decides one call for an ACTIVE account (the caller answers ACCOUNT_DISABLED itself). */
    Decision reserve(Account a, ReserveRequest r, YearMonth month, long nowMs, String id, Limits l) {
        return db.transactionResult(cfg -> {
            DSLContext tx = cfg.dsl();
            long[] counters = lockMonth(tx, a.userId(), month, nowMs);
            long settled = counters[0];
            long reserved = counters[1];
            long window = nowMs - Math.floorMod(nowMs, WINDOW_MS);
            long[] user = lockRate(tx, a.userId(), USER_SCOPE, window);
            long[] key = lockRate(tx, a.userId(), r.apiKeyId(), window);
            long userTokens = Math.min(r.estimatedTokens(), l.userTpm());
            long keyTokens = Math.min(r.estimatedTokens(), l.keyTpm());
            Duration reset = Duration.ofMillis(window + WINDOW_MS - nowMs);
            RateLimitStatus req = tighter(l.userRpm(), l.userRpm() - user[0] - 1, l.keyRpm(), l.keyRpm() - key[0] - 1, reset);
            RateLimitStatus tok = tighter(l.userTpm(), l.userTpm() - user[1] - userTokens, l.keyTpm(), l.keyTpm() - key[1] - keyTokens, reset);
            long credit = a.monthlyCreditNanoUsd();
            if (user[0] + 1 > l.userRpm() || key[0] + 1 > l.keyRpm()) {
                return rejected(RejectReason.RATE_LIMITED_REQUESTS, req, tok, credit, settled + reserved, reset);
            }
            if (user[1] + userTokens > l.userTpm() || key[1] + keyTokens > l.keyTpm()) {
                return rejected(RejectReason.RATE_LIMITED_TOKENS, req, tok, credit, settled + reserved, reset);
            }
            Route route;
            boolean fitsCredit = settled + reserved + r.estimatedCostNanoUsd() <= credit;
            // The key's budget (ADR 0081): its spend read under the user's month lock, so serial like the credit.
            boolean fitsKey = r.keyBudgetNanoUsd() < 0
                    || keySpend(tx, a.userId(), r.apiKeyId(), month) + r.estimatedCostNanoUsd() <= r.keyBudgetNanoUsd();
            if (fitsCredit && fitsKey) {
                route = Route.SERVICE_CREDIT;
                reserved += r.estimatedCostNanoUsd();
            } else if (a.hasPersonalKey()) {
                route = Route.PERSONAL_KEY;
            } else {
                return rejected(fitsCredit ? RejectReason.KEY_BUDGET_EXCEEDED : RejectReason.CREDIT_EXHAUSTED, req, tok, credit,
                        settled + reserved, null);
            }
            chargeRate(tx, a.userId(), USER_SCOPE, window, user[0] + 1, user[1] + userTokens);
            chargeRate(tx, a.userId(), r.apiKeyId(), window, key[0] + 1, key[1] + keyTokens);
            var t = QUOTA_DB_RESERVATION;
            tx.insertInto(t).set(t.RESERVATION_ID, id).set(t.USER_ID, a.userId()).set(t.BILLING_MONTH, month.atDay(1))
                    .set(t.API_KEY_ID, r.apiKeyId()).set(t.ROUTE, route == Route.SERVICE_CREDIT ? "S" : "P").set(t.STATE, "O")
                    .set(t.ESTIMATE_NANO_USD, r.estimatedCostNanoUsd()).set(t.ESTIMATE_TOKENS, r.estimatedTokens())
                    .set(t.WINDOW_START_MS, window).set(t.DEADLINE_MS, nowMs + reservationTtlMs).execute();
            var m = QUOTA_DB_MONTH;
            tx.update(m).set(m.SETTLED_NANO_USD, settled).set(m.RESERVED_NANO_USD, reserved).set(m.PENDING, true)
                    .where(m.USER_ID.eq(a.userId())).and(m.BILLING_MONTH.eq(month.atDay(1))).execute();
            return new Decision(route, null, id, req, tok, credit, Math.max(0, credit - settled - reserved), List.of(),
                    SoftLimitStatus.UNKNOWN, DecisionMode.DATABASE, null);
        });
    }

    /**
     * Charges requests and tokens to the caller's windows without a reservation (admit.lua's rule): all limits allow
     * it and all are charged, or nothing is.
     */
    Decision admit(String userId, String apiKeyId, long requests, long tokens, long nowMs, Limits l) {
        return db.transactionResult(cfg -> {
            DSLContext tx = cfg.dsl();
            long window = nowMs - Math.floorMod(nowMs, WINDOW_MS);
            long[] user = lockRate(tx, userId, USER_SCOPE, window);
            long[] key = lockRate(tx, userId, apiKeyId, window);
            long userTokens = Math.min(tokens, l.userTpm());
            long keyTokens = Math.min(tokens, l.keyTpm());
            Duration reset = Duration.ofMillis(window + WINDOW_MS - nowMs);
            RateLimitStatus req = tighter(l.userRpm(), l.userRpm() - user[0] - requests, l.keyRpm(), l.keyRpm() - key[0] - requests, reset);
            RateLimitStatus tok = tighter(l.userTpm(), l.userTpm() - user[1] - userTokens, l.keyTpm(), l.keyTpm() - key[1] - keyTokens, reset);
            RejectReason reason = null;
            if (user[0] + requests > l.userRpm() || key[0] + requests > l.keyRpm()) {
                reason = RejectReason.RATE_LIMITED_REQUESTS;
            } else if (user[1] + userTokens > l.userTpm() || key[1] + keyTokens > l.keyTpm()) {
                reason = RejectReason.RATE_LIMITED_TOKENS;
            }
            if (reason == null) {
                chargeRate(tx, userId, USER_SCOPE, window, user[0] + requests, user[1] + userTokens);
                chargeRate(tx, userId, apiKeyId, window, key[0] + requests, key[1] + keyTokens);
            }
            return new Decision(reason == null ? Route.SERVICE_CREDIT : Route.REJECTED, reason, null, req, tok, 0, 0, List.of(),
                    SoftLimitStatus.UNKNOWN, DecisionMode.DATABASE, reason == null ? null : reset);
        });
    }

    // ------------------------------------------------------------------ settle / release

    /**
     * Settles ({@code actualNanoUsd >= 0}) or releases ({@code actualNanoUsd < 0}) a reservation decided here, with
     * settle.lua's and release.lua's rules: idempotent, an expired one still counts its actual cost, token windows
     * trued up when the call's window is still the current one. Returns null when the reservation was handed over to
     * Redis (the caller settles it there).
     */
    SettleResult close(QuotaKeys.ReservationId rid, long actualNanoUsd, long actualTokens, long nowMs, Limits l) {
        boolean settle = actualNanoUsd >= 0;
        return db.transactionResult(cfg -> {
            DSLContext tx = cfg.dsl();
            var t = QUOTA_DB_RESERVATION;
            var m = QUOTA_DB_MONTH;
            // The month row first, as every other transaction of this user: one lock order, no deadlock.
            Record month = tx.select(m.SETTLED_NANO_USD, m.RESERVED_NANO_USD).from(m)
                    .where(m.USER_ID.eq(rid.userId())).and(m.BILLING_MONTH.eq(rid.month().atDay(1))).forUpdate().fetchOne();
            Record res = tx.select(t.STATE, t.ROUTE, t.ESTIMATE_NANO_USD, t.ESTIMATE_TOKENS, t.WINDOW_START_MS, t.API_KEY_ID)
                    .from(t).where(t.RESERVATION_ID.eq(rid.id())).forUpdate().fetchOne();
            if (month == null || res == null) {
                return SettleResult.of(rid.id(), SettleResult.Status.UNKNOWN_RESERVATION);
            }
            String state = res.get(t.STATE);
            Route route = "S".equals(res.get(t.ROUTE)) ? Route.SERVICE_CREDIT : Route.PERSONAL_KEY;
            switch (state) {
                case "H" -> { return null; }
                case "S" -> { return new SettleResult(rid.id(), SettleResult.Status.ALREADY_SETTLED, route, -1, List.of(), SoftLimitStatus.UNKNOWN); }
                case "R" -> { return new SettleResult(rid.id(), SettleResult.Status.ALREADY_RELEASED, route, -1, List.of(), SoftLimitStatus.UNKNOWN); }
                default -> { }
            }
            long settled = month.get(m.SETTLED_NANO_USD);
            long reserved = month.get(m.RESERVED_NANO_USD);
            long estimate = res.get(t.ESTIMATE_NANO_USD);
            if ("O".equals(state) && route == Route.SERVICE_CREDIT) {
                reserved -= estimate;
            }
            long estTokens = res.get(t.ESTIMATE_TOKENS);
            long window = nowMs - Math.floorMod(nowMs, WINDOW_MS);
            if (l != null && res.get(t.WINDOW_START_MS) == window) {
                // Same window as the charge: replace the estimate with the actual tokens (release: none were used).
                long used = settle ? actualTokens : 0;
                trueUp(tx, rid.userId(), USER_SCOPE, window, Math.min(used, l.userTpm()) - Math.min(estTokens, l.userTpm()));
                trueUp(tx, rid.userId(), res.get(t.API_KEY_ID), window, Math.min(used, l.keyTpm()) - Math.min(estTokens, l.keyTpm()));
            }
            var update = tx.update(m).set(m.RESERVED_NANO_USD, reserved).set(m.PENDING, true);
            long after = -1;
            if (settle && route == Route.SERVICE_CREDIT) {
                after = settled + actualNanoUsd;
                update = update.set(m.SETTLED_NANO_USD, after).set(m.UNSYNCED_SETTLED_NANO_USD, m.UNSYNCED_SETTLED_NANO_USD.plus(actualNanoUsd));
            } else if (settle) {
                update = update.set(m.UNSYNCED_PERSONAL_NANO_USD, m.UNSYNCED_PERSONAL_NANO_USD.plus(actualNanoUsd));
            }
            update.where(m.USER_ID.eq(rid.userId())).and(m.BILLING_MONTH.eq(rid.month().atDay(1))).execute();
            tx.update(t).set(t.STATE, settle ? "S" : "R").set(t.ACTUAL_NANO_USD, settle ? actualNanoUsd : null)
                    .set(t.ACTUAL_TOKENS, settle ? actualTokens : null).set(t.CLOSED_MS, nowMs)
                    .where(t.RESERVATION_ID.eq(rid.id())).execute();
            SettleResult.Status status = !settle ? SettleResult.Status.RELEASED
                    : "E".equals(state) ? SettleResult.Status.SETTLED_AFTER_EXPIRY : SettleResult.Status.SETTLED;
            return new SettleResult(rid.id(), status, route, after, List.of(), SoftLimitStatus.UNKNOWN);
        });
    }

    // ------------------------------------------------------------------ usage and the Redis side

    /** {settled, reserved} of a user's month as this path counts them now (settled raised to the sink's total). */
    long[] usage(String userId, YearMonth month) {
        long baseline = serviceCreditTotal(db, userId, month);
        var m = QUOTA_DB_MONTH;
        Record row = db.select(m.SETTLED_NANO_USD, m.RESERVED_NANO_USD).from(m)
                .where(m.USER_ID.eq(userId)).and(m.BILLING_MONTH.eq(month.atDay(1))).fetchOne();
        if (row == null) {
            return new long[]{baseline, 0};
        }
        return new long[]{Math.max(baseline, row.get(m.SETTLED_NANO_USD)), row.get(m.RESERVED_NANO_USD)};
    }

    /**
     * A key's service-credit spend in a month as this path counts it (ADR 0081): the ledger's, plus what was settled
     * here and is not in the ledger yet (matched by reservation id, which the event carries), plus the estimates still
     * open here. Reservations open in Redis when it went away are not seen, as for the credit.
     */
    private long keySpend(DSLContext tx, String userId, String apiKeyId, YearMonth month) {
        var l = USAGE_LEDGER;
        long ledger = tx.select(DSL.coalesce(DSL.sum(l.COST_NANO_USD), BigDecimal.ZERO)).from(l)
                .where(l.USER_ID.eq(userId)).and(l.BILLING_MONTH.eq(month.atDay(1)))
                .and(l.API_KEY_ID.eq(apiKeyId)).and(l.KEY_SOURCE.eq("SERVICE_CREDIT"))
                .fetchOne().value1().longValueExact();
        var t = QUOTA_DB_RESERVATION;
        long open = tx.select(DSL.coalesce(DSL.sum(t.ESTIMATE_NANO_USD), BigDecimal.ZERO)).from(t)
                .where(t.USER_ID.eq(userId)).and(t.BILLING_MONTH.eq(month.atDay(1))).and(t.API_KEY_ID.eq(apiKeyId))
                .and(t.ROUTE.eq("S")).and(t.STATE.eq("O")).fetchOne().value1().longValueExact();
        return ledger + keySettledNotInLedger(tx, userId, apiKeyId, month) + open;
    }

    /** Settled here for a key in a month and not in the ledger yet: a Redis key-spend rebuild adds it (ADR 0081). */
    long keySettledNotInLedger(String userId, String apiKeyId, YearMonth month) {
        return keySettledNotInLedger(db, userId, apiKeyId, month);
    }

    private static long keySettledNotInLedger(DSLContext q, String userId, String apiKeyId, YearMonth month) {
        var t = QUOTA_DB_RESERVATION;
        var l = USAGE_LEDGER;
        return q.select(DSL.coalesce(DSL.sum(t.ACTUAL_NANO_USD), BigDecimal.ZERO)).from(t)
                .where(t.USER_ID.eq(userId)).and(t.BILLING_MONTH.eq(month.atDay(1))).and(t.API_KEY_ID.eq(apiKeyId))
                .and(t.ROUTE.eq("S")).and(t.STATE.eq("S"))
                .andNotExists(DSL.selectOne().from(l).where(l.USER_ID.eq(userId)).and(l.BILLING_MONTH.eq(month.atDay(1)))
                        .and(l.RESERVATION_ID.eq(t.RESERVATION_ID)))
                .fetchOne().value1().longValueExact();
    }

    /**
     * The settled service-credit usage a Redis rebuild must start from at least: what this path counted (it
     * includes settles the sink may not have written yet). 0 when the user's month was never decided here.
     */
    long baselineFloor(String userId, YearMonth month) {
        var m = QUOTA_DB_MONTH;
        Long v = db.select(m.SETTLED_NANO_USD).from(m).where(m.USER_ID.eq(userId)).and(m.BILLING_MONTH.eq(month.atDay(1)))
                .fetchOne(m.SETTLED_NANO_USD);
        return v == null ? 0 : v;
    }

    /** Whether any user's month has something Redis has not taken over yet (cheap: a partial index). */
    boolean anyPending() {
        var m = QUOTA_DB_MONTH;
        return db.fetchExists(db.selectOne().from(m).where(m.PENDING));
    }

    /**
     * Hands every pending user-month over to Redis: per user, in one transaction holding the month row, {@code redis}
     * applies the handover (it must be idempotent per {@link Handover#seq}); only when it returns are the
     * reservations marked handed over (H) and the unsynced sums zeroed. If {@code redis} throws, the transaction rolls
     * back and the rows stay pending. Then purges closed reservations past their retention. Returns the user-months
     * handed over.
     */
    int handOver(Consumer<Handover> redis, long nowMs) {
        var m = QUOTA_DB_MONTH;
        var t = QUOTA_DB_RESERVATION;
        var pending = db.select(m.USER_ID, m.BILLING_MONTH).from(m).where(m.PENDING).fetch();
        int n = 0;
        for (var p : pending) {
            String userId = p.value1();
            LocalDate month = p.value2();
            boolean done = db.transactionResult(cfg -> {
                DSLContext tx = cfg.dsl();
                Record row = tx.select(m.UNSYNCED_SETTLED_NANO_USD, m.UNSYNCED_PERSONAL_NANO_USD, m.HANDOVER_SEQ).from(m)
                        .where(m.USER_ID.eq(userId)).and(m.BILLING_MONTH.eq(month)).and(m.PENDING).forUpdate().fetchOne();
                if (row == null) {
                    return false; // another edge handed it over meanwhile
                }
                List<HandedReservation> open = new ArrayList<>();
                for (var r : tx.select(t.RESERVATION_ID, t.STATE, t.ROUTE, t.ESTIMATE_NANO_USD, t.ESTIMATE_TOKENS, t.DEADLINE_MS)
                        .from(t).where(t.USER_ID.eq(userId)).and(t.BILLING_MONTH.eq(month)).and(t.STATE.in("O", "E"))
                        .forUpdate().fetch()) {
                    open.add(new HandedReservation(r.value1(), r.value2(), r.value3(), r.value4(), r.value5(), r.value6()));
                }
                long seq = row.get(m.HANDOVER_SEQ) + 1;
                redis.accept(new Handover(userId, YearMonth.from(month), seq, row.get(m.UNSYNCED_SETTLED_NANO_USD),
                        row.get(m.UNSYNCED_PERSONAL_NANO_USD), List.copyOf(open)));
                tx.update(t).set(t.STATE, "H").set(t.CLOSED_MS, nowMs)
                        .where(t.USER_ID.eq(userId)).and(t.BILLING_MONTH.eq(month)).and(t.STATE.in("O", "E")).execute();
                tx.update(m).set(m.UNSYNCED_SETTLED_NANO_USD, 0L).set(m.UNSYNCED_PERSONAL_NANO_USD, 0L).set(m.RESERVED_NANO_USD, 0L)
                        .set(m.HANDOVER_SEQ, seq).set(m.PENDING, false)
                        .where(m.USER_ID.eq(userId)).and(m.BILLING_MONTH.eq(month)).execute();
                return true;
            });
            if (done) {
                n++;
            }
        }
        db.deleteFrom(t).where(t.STATE.in("S", "R", "H")).and(t.CLOSED_MS.lt(nowMs - retentionMs)).execute();
        return n;
    }

    // ------------------------------------------------------------------ helpers

    /**
     * Locks (creating when absent) the user's month row, raises its settled usage to the sink's total (never lowers
     * it: the reconciler's rule) and expires its open reservations past their deadline. Returns {settled, reserved}.
     */
    private long[] lockMonth(DSLContext tx, String userId, YearMonth month, long nowMs) {
        var m = QUOTA_DB_MONTH;
        var t = QUOTA_DB_RESERVATION;
        LocalDate first = month.atDay(1);
        tx.insertInto(m).set(m.USER_ID, userId).set(m.BILLING_MONTH, first).onConflictDoNothing().execute();
        Record row = tx.select(m.SETTLED_NANO_USD, m.RESERVED_NANO_USD).from(m)
                .where(m.USER_ID.eq(userId)).and(m.BILLING_MONTH.eq(first)).forUpdate().fetchOne();
        long settled = Math.max(row.get(m.SETTLED_NANO_USD), serviceCreditTotal(tx, userId, month));
        long reserved = row.get(m.RESERVED_NANO_USD);
        for (var e : tx.update(t).set(t.STATE, "E")
                .where(t.USER_ID.eq(userId)).and(t.BILLING_MONTH.eq(first)).and(t.STATE.eq("O")).and(t.DEADLINE_MS.lt(nowMs))
                .returning(t.ROUTE, t.ESTIMATE_NANO_USD).fetch()) {
            if ("S".equals(e.get(t.ROUTE))) {
                reserved -= e.get(t.ESTIMATE_NANO_USD);
            }
        }
        return new long[]{settled, reserved};
    }

    private static long serviceCreditTotal(DSLContext ctx, String userId, YearMonth month) {
        var u = USAGE_TOTAL_MONTHLY;
        BigDecimal sum = ctx.select(DSL.coalesce(DSL.sum(u.COST_NANO_USD), BigDecimal.ZERO)).from(u)
                .where(u.USER_ID.eq(userId)).and(u.BILLING_MONTH.eq(month.atDay(1))).and(u.KEY_SOURCE.eq("SERVICE_CREDIT"))
                .fetchOne().value1();
        return sum.longValueExact();
    }

    /** Locks (creating when absent) one rate row; returns {requests, tokens} in {@code window} (0 in a new window). */
    private static long[] lockRate(DSLContext tx, String userId, String scope, long window) {
        var r = QUOTA_DB_RATE;
        tx.insertInto(r).set(r.USER_ID, userId).set(r.API_KEY_ID, scope).set(r.WINDOW_START_MS, window)
                .set(r.REQUESTS, 0L).set(r.TOKENS, 0L).onConflictDoNothing().execute();
        Record row = tx.select(r.WINDOW_START_MS, r.REQUESTS, r.TOKENS).from(r)
                .where(r.USER_ID.eq(userId)).and(r.API_KEY_ID.eq(scope)).forUpdate().fetchOne();
        if (row.get(r.WINDOW_START_MS) != window) {
            return new long[]{0, 0};
        }
        return new long[]{row.get(r.REQUESTS), row.get(r.TOKENS)};
    }

    private static void chargeRate(DSLContext tx, String userId, String scope, long window, long requests, long tokens) {
        var r = QUOTA_DB_RATE;
        tx.update(r).set(r.WINDOW_START_MS, window).set(r.REQUESTS, requests).set(r.TOKENS, tokens)
                .where(r.USER_ID.eq(userId)).and(r.API_KEY_ID.eq(scope)).execute();
    }

    /** Adds {@code diff} tokens (negative: gives back) to a rate row still in {@code window}, never below zero. */
    private static void trueUp(DSLContext tx, String userId, String scope, long window, long diff) {
        if (diff == 0) {
            return;
        }
        var r = QUOTA_DB_RATE;
        tx.update(r).set(r.TOKENS, DSL.greatest(DSL.val(0L), r.TOKENS.plus(diff)))
                .where(r.USER_ID.eq(userId)).and(r.API_KEY_ID.eq(scope)).and(r.WINDOW_START_MS.eq(window)).execute();
    }

    private static RateLimitStatus tighter(long userLimit, long userRemaining, long keyLimit, long keyRemaining, Duration reset) {
        if (keyRemaining < userRemaining) {
            return new RateLimitStatus(keyLimit, Math.max(0, keyRemaining), reset);
        }
        return new RateLimitStatus(userLimit, Math.max(0, userRemaining), reset);
    }

    private static Decision rejected(RejectReason reason, RateLimitStatus req, RateLimitStatus tok, long credit, long committed,
                                     Duration retry) {
        return new Decision(Route.REJECTED, reason, null, req, tok,
                credit, Math.max(0, credit - committed), List.of(), SoftLimitStatus.UNKNOWN, DecisionMode.DATABASE, retry);
    }
}
