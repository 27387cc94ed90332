package dev.tokenmeter.edge.call;

import dev.tokenmeter.edge.alert.UsageAlertPublisher;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.FailurePolicy;
import dev.tokenmeter.edge.quota.QuotaEngine;
import dev.tokenmeter.edge.quota.ReserveRequest;
import dev.tokenmeter.edge.quota.SettleResult;
import dev.tokenmeter.edge.quota.UsageSnapshot;
import dev.tokenmeter.edge.quota.QuotaConnection;
import io.lettuce.core.api.StatefulRedisConnection;

import java.time.Clock;
import java.time.YearMonth;
import java.util.Optional;

/**
 * The {@link QuotaGate} on the Redis quota engine. Ready when the Redis connection is up, or at any
 * time under the FAIL_OPEN policy (the engine then admits against its local share of the limits) and the
 * FAIL_TO_DATABASE policy (the engine then decides in Postgres).
 *
 * <p>Thresholds of the monthly credit (50/80/100 %) that the engine reports as crossed, at reserve or at settle, are
 * handed to the {@link UsageAlertPublisher} (asynchronous; never blocks or fails the call). Both the proxy and the
 * metering API decide through this gate, so both raise them.
 */
public final class QuotaEngineGate implements QuotaGate {

    private final QuotaEngine engine;
    private final QuotaConnection redis;
    private final FailurePolicy policy;
    private final UsageAlertPublisher alerts;
    private final Clock clock;

    /** A gate that publishes no alerts (the aggregator's alerts from billed usage still come). */
    public QuotaEngineGate(QuotaEngine engine, StatefulRedisConnection<String, String> redis, FailurePolicy policy) {
        this(engine, QuotaConnection.of(redis), policy, null, Clock.systemUTC());
    }

    /** @param alerts where crossed thresholds go; null publishes none */
    public QuotaEngineGate(QuotaEngine engine, StatefulRedisConnection<String, String> redis, FailurePolicy policy,
                           UsageAlertPublisher alerts, Clock clock) {
        this(engine, QuotaConnection.of(redis), policy, alerts, clock);
    }

    /** @param redis the quota engine's connection, standalone or cluster ({@code QuotaRedis.commands()}) */
    public QuotaEngineGate(QuotaEngine engine, QuotaConnection redis, FailurePolicy policy,
                           UsageAlertPublisher alerts, Clock clock) {
        this.engine = engine;
        this.redis = redis;
        this.policy = policy;
        this.alerts = alerts;
        this.clock = clock;
    }

    @Override
    public Decision reserve(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                            String eventId) {
        return alerted(userId, eventId, engine.reserve(new ReserveRequest(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens)));
    }

    @Override
    public Decision reserve(String userId, String apiKeyId, Long keyBudgetNanoUsd, String model, long estimatedCostNanoUsd,
                            long estimatedTokens, String eventId) {
        return alerted(userId, eventId, engine.reserve(new ReserveRequest(userId, apiKeyId, model, estimatedCostNanoUsd,
                estimatedTokens, keyBudgetNanoUsd == null ? ReserveRequest.NO_KEY_BUDGET : keyBudgetNanoUsd)));
    }

    @Override
    public Decision reserve(ReserveRequest request, String eventId) {
        return alerted(request.userId(), eventId, engine.reserve(request));
    }

    @Override
    public Decision admit(String userId, String apiKeyId, long requests, long tokens) {
        return alerted(userId, null, engine.admit(userId, apiKeyId, requests, tokens));
    }

    private Decision alerted(String userId, String eventId, Decision d) {
        if (alerts != null && !d.thresholdsCrossed().isEmpty()) {
            // The reservation id names the month the engine counted the call in; a refused call has none.
            YearMonth month = d.reservationId() != null ? QuotaEngine.reservationMonth(d.reservationId()) : engine.currentMonth();
            long committed = d.creditNanoUsd() - d.remainingCreditNanoUsd();
            alerts.thresholdsCrossed(userId, month, d.thresholdsCrossed(), committed, d.creditNanoUsd(), clock.instant(), eventId);
        }
        return d;
    }

    @Override
    public void settle(String reservationId, long actualCostNanoUsd, long actualTokens, String eventId) {
        SettleResult r = engine.settle(reservationId, actualCostNanoUsd, actualTokens);
        if (alerts != null && !r.thresholdsCrossed().isEmpty()) {
            // Settled usage after this call; the credit is looked up by the publisher, off this thread.
            alerts.thresholdsCrossed(QuotaEngine.reservationUser(reservationId), QuotaEngine.reservationMonth(reservationId),
                    r.thresholdsCrossed(), r.settledNanoUsd(), -1, clock.instant(), eventId);
        }
    }

    @Override
    public void release(String reservationId) {
        engine.release(reservationId);
    }

    @Override
    public Optional<UsageSnapshot> usage(String userId, YearMonth month) {
        try {
            return Optional.of(engine.usage(userId, month));
        } catch (IllegalArgumentException unknownUser) {
            return Optional.empty();
        }
    }

    @Override
    public java.util.OptionalLong keySpend(String userId, String apiKeyId, YearMonth month) {
        try {
            return java.util.OptionalLong.of(engine.keySpend(userId, apiKeyId, month));
        } catch (RuntimeException e) {
            return java.util.OptionalLong.empty(); // Postgres away too: the usage API shows null
        }
    }

    @Override
    public java.util.OptionalLong tenantSpend(String tenantId, YearMonth month) {
        try {
            return java.util.OptionalLong.of(engine.tenantSpend(tenantId, month));
        } catch (RuntimeException e) {
            return java.util.OptionalLong.empty(); // Postgres away too, or an id outside the engine's alphabet
        }
    }

    @Override
    public void tenantBudgetChanged(String tenantId, boolean createdOrRemoved) {
        engine.tenantBudgetChanged(tenantId, createdOrRemoved);
    }

    @Override
    public boolean isReady() {
        return policy == FailurePolicy.FAIL_OPEN || policy == FailurePolicy.FAIL_TO_DATABASE || redis.isOpen();
    }
}
