package dev.tokenmeter.edge;

import dev.tokenmeter.edge.proxy.QuotaGate;

import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A stand-in for the quota engine while module quota is not merged: per-user monthly credit with reservations,
 * held in memory under one lock. It enforces the same contract the proxy relies on (reserve the estimate,
 * settle the actual cost, release on failure, never admit past the credit), so the proxy's tests assert real
 * outcomes; the quota engine's own behaviour on Redis is tested in its module.
 */
public final class TestQuotaGate implements QuotaGate {

    private static final long RPM = 10_000;

    private final Map<String, Long> creditByUser = new ConcurrentHashMap<>();
    private final Map<String, Long> usedByUser = new ConcurrentHashMap<>();
    private final Map<String, Long> reservedByUser = new ConcurrentHashMap<>();
    private final Map<String, Reservation> reservations = new ConcurrentHashMap<>();
    private final Map<String, Boolean> personal = new ConcurrentHashMap<>();
    private final Map<String, RejectReason> forced = new ConcurrentHashMap<>();

    private record Reservation(String userId, long amount) {
    }

    public void account(String userId, long creditNanoUsd) {
        creditByUser.put(userId, creditNanoUsd);
    }

    /** Every decision for this user is a rejection for {@code reason} (rate limits, an unavailable engine). */
    void reject(String userId, RejectReason reason) {
        forced.put(userId, reason);
    }

    void usePersonalKey(String userId) {
        personal.put(userId, true);
    }

    public synchronized long usedNanoUsd(String userId) {
        return usedByUser.getOrDefault(userId, 0L);
    }

    public synchronized long reservedNanoUsd(String userId) {
        return reservedByUser.getOrDefault(userId, 0L);
    }

    @Override
    public synchronized Decision reserve(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens) {
        Long credit = creditByUser.get(userId);
        Limit requests = new Limit(RPM, RPM - 1, Duration.ofSeconds(60));
        Limit tokens = new Limit(1_000_000, 1_000_000 - estimatedTokens, Duration.ofMillis(6_500));
        RejectReason reason = forced.get(userId);
        if (reason == RejectReason.QUOTA_UNAVAILABLE) {
            return new Decision(Route.REJECTED, reason, null, null, null, null, false, Duration.ofSeconds(2));
        }
        if (reason != null) {
            return new Decision(Route.REJECTED, reason, null, new Limit(RPM, 0, Duration.ofSeconds(12)), tokens, null, false, null);
        }
        if (credit == null) {
            return new Decision(Route.REJECTED, RejectReason.UNKNOWN_USER, null, requests, tokens, null, false, null);
        }
        if (personal.containsKey(userId)) {
            String id = UUID.randomUUID().toString();
            reservations.put(id, new Reservation(userId, 0));
            return new Decision(Route.PERSONAL_KEY, null, id, requests, tokens, null, false, null);
        }
        long committed = usedNanoUsd(userId) + reservedNanoUsd(userId);
        long remaining = credit - committed;
        if (estimatedCostNanoUsd > remaining) {
            return new Decision(Route.REJECTED, RejectReason.CREDIT_EXHAUSTED, null, requests, tokens, Math.max(0, remaining), false, null);
        }
        String id = UUID.randomUUID().toString();
        reservations.put(id, new Reservation(userId, estimatedCostNanoUsd));
        reservedByUser.merge(userId, estimatedCostNanoUsd, Long::sum);
        return new Decision(Route.SERVICE_CREDIT, null, id, requests, tokens, remaining - estimatedCostNanoUsd, false, null);
    }

    @Override
    public synchronized void settle(String reservationId, long actualCostNanoUsd, long actualTokens) {
        Reservation r = reservations.remove(reservationId);
        if (r == null) {
            throw new IllegalStateException("unknown reservation " + reservationId);
        }
        reservedByUser.merge(r.userId(), -r.amount(), Long::sum);
        if (!personal.containsKey(r.userId())) {
            usedByUser.merge(r.userId(), actualCostNanoUsd, Long::sum);
        }
    }

    @Override
    public synchronized void release(String reservationId) {
        Reservation r = reservations.remove(reservationId);
        if (r == null) {
            throw new IllegalStateException("unknown reservation " + reservationId);
        }
        reservedByUser.merge(r.userId(), -r.amount(), Long::sum);
    }

    @Override
    public synchronized java.util.Optional<RealtimeUsage> usage(String userId, java.time.YearMonth month) {
        Long credit = creditByUser.get(userId);
        return credit == null ? java.util.Optional.empty()
                : java.util.Optional.of(new RealtimeUsage(credit, usedNanoUsd(userId), reservedNanoUsd(userId)));
    }

    @Override
    public boolean isReady() {
        return true;
    }
}
