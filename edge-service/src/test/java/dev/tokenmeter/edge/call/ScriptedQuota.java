package dev.tokenmeter.edge.call;

import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.DecisionMode;
import dev.tokenmeter.edge.quota.RateLimitStatus;
import dev.tokenmeter.edge.quota.RejectReason;
import dev.tokenmeter.edge.quota.Route;
import dev.tokenmeter.edge.quota.SoftLimitStatus;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** A {@link QuotaGate} that answers {@link #next} and records what the call asked of it (on the shared timeline too). */
public final class ScriptedQuota implements QuotaGate {

    public static final RateLimitStatus REQUESTS = new RateLimitStatus(100, 99, Duration.ofSeconds(60));
    public static final RateLimitStatus TOKENS = new RateLimitStatus(40_000, 39_000, Duration.ofSeconds(60));
    public static final long CREDIT_NANO_USD = 5_000_000_000L;

    /** A settle: the reservation, the cost and tokens, the event named. */
    public record Settle(String reservationId, long costNanoUsd, long tokens, String eventId) {
    }

    private final List<String> timeline;
    public Decision next = admitted("res-1");
    /** When set, reserve throws it (the gate failed: Redis down, a bug). */
    public RuntimeException failure;
    public final List<Long> reservedCosts = new ArrayList<>();
    public final List<Settle> settles = new ArrayList<>();
    public final List<String> releases = new ArrayList<>();

    public ScriptedQuota(List<String> timeline) {
        this.timeline = timeline;
    }

    public static Decision admitted(String reservationId) {
        return new Decision(Route.SERVICE_CREDIT, null, reservationId, REQUESTS, TOKENS, CREDIT_NANO_USD, CREDIT_NANO_USD - 1_000,
                List.of(), SoftLimitStatus.UNKNOWN, DecisionMode.REDIS, null);
    }

    public static Decision rejected(RejectReason reason) {
        return new Decision(Route.REJECTED, reason, null, REQUESTS, TOKENS, CREDIT_NANO_USD, 0, List.of(),
                SoftLimitStatus.UNKNOWN, DecisionMode.REDIS, null);
    }

    @Override
    public Decision reserve(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                            String eventId) {
        timeline.add("reserve");
        reservedCosts.add(estimatedCostNanoUsd);
        if (failure != null) {
            throw failure;
        }
        return next;
    }

    @Override
    public Decision admit(String userId, String apiKeyId, long requests, long tokens) {
        return admitted(null);
    }

    @Override
    public void settle(String reservationId, long actualCostNanoUsd, long actualTokens, String eventId) {
        timeline.add("settle");
        settles.add(new Settle(reservationId, actualCostNanoUsd, actualTokens, eventId));
    }

    @Override
    public void release(String reservationId) {
        timeline.add("release");
        releases.add(reservationId);
    }

    @Override
    public boolean isReady() {
        return true;
    }
}
