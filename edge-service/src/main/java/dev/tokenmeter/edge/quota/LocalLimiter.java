package dev.tokenmeter.edge.quota;

import dev.tokenmeter.edge.account.Account;
import java.time.Duration;
import java.time.YearMonth;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The fail-open limiter: while Redis is unavailable this process admits, per user, at most
 * {@code sharePercent} of the user's request and token rates (same GCRA as the script) and of the
 * monthly credit (counted from the first fail-open decision of the month in this process). Calls it
 * admits are still metered and published by the edge; Postgres then raises Redis's counters through
 * the reconciler once Redis is back.
 */
final class LocalLimiter {

    /** An open local reservation; {@code tokenChargeEndMs} is the token limiter's arrival time right after its charge. */
    private record Open(String userId, Route route, long estimateNanoUsd, long deadlineMs, long chargedTokens,
                        double msPerToken, double tokenChargeEndMs) {}

    private static final class UserState {
        YearMonth month;
        double reqTatMs;
        double tokTatMs;
        long spentNanoUsd;
    }

    private final int sharePercent;
    private final ConcurrentHashMap<String, UserState> users = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, Open> open = new ConcurrentHashMap<>();

    private final long ttlMs;
    private final java.util.concurrent.atomic.AtomicLong calls = new java.util.concurrent.atomic.AtomicLong();

    LocalLimiter(int sharePercent, long ttlMs) {
        this.sharePercent = sharePercent;
        this.ttlMs = ttlMs;
    }

    Decision reserve(Account a, ReserveRequest r, YearMonth month, long nowMs, QuotaKeys keys) {
        long rpm = Math.max(1, (long) a.requestsPerMinute() * sharePercent / 100);
        long tpm = Math.max(1, a.tokensPerMinute() * sharePercent / 100);
        long credit = a.monthlyCreditNanoUsd() * sharePercent / 100;
        if ((calls.incrementAndGet() & 1023) == 0) {
            // Reservations of crashed callers: freed after the same TTL as in Redis, so the map stays bounded.
            for (var e : open.entrySet()) {
                if (e.getValue().deadlineMs() < nowMs) close(e.getKey(), -1, -1, nowMs);
            }
        }
        UserState s = users.computeIfAbsent(a.userId(), k -> new UserState());
        synchronized (s) {
            if (!month.equals(s.month)) {
                s.month = month;
                s.spentNanoUsd = 0;
            }
            double reqT = 60000.0 / rpm;
            double tokT = 60000.0 / tpm;
            double reqTat = Math.max(s.reqTatMs, nowMs);
            double tokTat = Math.max(s.tokTatMs, nowMs);
            double newReq = reqTat + reqT;
            long chargedTokens = Math.min(r.estimatedTokens(), tpm);
            double newTok = tokTat + chargedTokens * tokT;
            RateLimitStatus req = status(rpm, reqT, newReq, nowMs);
            RateLimitStatus tok = status(tpm, tokT, newTok, nowMs);
            if (newReq - 60000 > nowMs) {
                return reject(RejectReason.RATE_LIMITED_REQUESTS, req, tok, a.monthlyCreditNanoUsd(), credit, s, (long) Math.ceil(newReq - 60000 - nowMs));
            }
            if (newTok - 60000 > nowMs) {
                return reject(RejectReason.RATE_LIMITED_TOKENS, req, tok, a.monthlyCreditNanoUsd(), credit, s, (long) Math.ceil(newTok - 60000 - nowMs));
            }
            Route route;
            if (s.spentNanoUsd + r.estimatedCostNanoUsd() <= credit) {
                route = Route.SERVICE_CREDIT;
                s.spentNanoUsd += r.estimatedCostNanoUsd();
            } else if (a.hasPersonalKey()) {
                route = Route.PERSONAL_KEY;
            } else {
                return reject(RejectReason.CREDIT_EXHAUSTED, req, tok, a.monthlyCreditNanoUsd(), credit, s, 0);
            }
            s.reqTatMs = newReq;
            s.tokTatMs = newTok;
            String id = keys.newReservationId(month, r.apiKeyId(), true);
            open.put(id, new Open(a.userId(), route, route == Route.SERVICE_CREDIT ? r.estimatedCostNanoUsd() : 0, nowMs + ttlMs,
                    chargedTokens, tokT, newTok));
            return new Decision(route, null, id, req, tok, a.monthlyCreditNanoUsd(),
                    Math.max(0, credit - s.spentNanoUsd), List.of(), SoftLimitStatus.UNKNOWN, DecisionMode.FAIL_OPEN, null);
        }
    }

    /**
     * Replaces the estimate with the actual cost and tokens (settle) or frees it (actual = -1, release), with
     * the same token true-up as settle.lua/release.lua: the excess is charged, the unused part given back as
     * far as it is still owed.
     */
    SettleResult close(String id, long actualNanoUsd, long actualTokens, long nowMs) {
        Open o = open.remove(id);
        if (o == null) {
            return SettleResult.of(id, SettleResult.Status.UNKNOWN_RESERVATION);
        }
        UserState s = users.get(o.userId());
        if (s != null) {
            synchronized (s) {
                if (o.route() == Route.SERVICE_CREDIT) {
                    s.spentNanoUsd += (actualNanoUsd < 0 ? 0 : actualNanoUsd) - o.estimateNanoUsd();
                }
                long tpm = Math.round(60000.0 / o.msPerToken());
                long diff = Math.min(Math.max(actualTokens, 0), tpm) - o.chargedTokens();
                if (diff > 0) {
                    s.tokTatMs = Math.max(s.tokTatMs, nowMs) + diff * o.msPerToken();
                } else if (diff < 0 && o.tokenChargeEndMs() > nowMs) {
                    s.tokTatMs -= Math.min(-diff * o.msPerToken(), o.tokenChargeEndMs() - nowMs);
                }
            }
        }
        return new SettleResult(id, SettleResult.Status.LOCAL, o.route(), -1, List.of(), SoftLimitStatus.UNKNOWN);
    }

    int openReservations() {
        return open.size();
    }

    private static RateLimitStatus status(long limit, double t, double tat, long nowMs) {
        long remaining = Math.max(0, (long) Math.floor((60000 - (tat - nowMs)) / t));
        return new RateLimitStatus(limit, remaining, Duration.ofMillis((long) Math.ceil(Math.max(0, tat - nowMs))));
    }

    private static Decision reject(RejectReason reason, RateLimitStatus req, RateLimitStatus tok, long accountCredit,
                                   long localCredit, UserState s, long retryMs) {
        return new Decision(Route.REJECTED, reason, null, req, tok, accountCredit, Math.max(0, localCredit - s.spentNanoUsd), List.of(),
                SoftLimitStatus.UNKNOWN, DecisionMode.FAIL_OPEN, reason == RejectReason.CREDIT_EXHAUSTED ? null : Duration.ofMillis(retryMs));
    }
}
