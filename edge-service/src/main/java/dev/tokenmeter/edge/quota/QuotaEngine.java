package dev.tokenmeter.edge.quota;

import dev.tokenmeter.edge.account.Account;
import dev.tokenmeter.edge.account.AccountDirectory;
import dev.tokenmeter.edge.quota.QuotaScripts.Script;
import io.lettuce.core.KeyScanCursor;
import io.lettuce.core.RedisException;
import io.lettuce.core.ScanArgs;
import io.lettuce.core.ScanCursor;
import io.lettuce.core.SetArgs;
import io.lettuce.core.api.StatefulRedisConnection;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Per-call quota decisions in Redis: {@link #reserve} (one Lua script: account status, GCRA rate
 * limits per user and per API key, credit check, reservation, 50/80/100% thresholds), {@link #settle}
 * and {@link #release} (idempotent), {@link #usage} (real-time view). Missing month counters are
 * rebuilt from Postgres ({@link UsageBaseline}) with SET, one rebuild per user at a time. A circuit
 * breaker guards Redis; while it is open or Redis fails, {@link QuotaConfig#failurePolicy()} decides.
 * Months are UTC calendar months of {@code clock}. See docs/adr/0010-quota-in-redis.md.
 *
 * <p>Why this class is over 300 lines: it is the Java half of one state machine whose other half is the Lua
 * scripts ({@link QuotaScripts}). Every public operation is one script call plus the same three rules around it —
 * the circuit breaker, the failure policy (fail closed, or the {@link LocalLimiter}'s local share) and the rebuild of
 * missing month counters from Postgres — and those rules must change together (when the breaker opens, when a
 * rebuild may run, what a settle does when Redis is gone). The parts without those rules already live apart: keys
 * ({@link QuotaKeys}), bounds ({@link QuotaLimits}), the fail-open limiter, the breaker, the reconciler.
 */
public final class QuotaEngine implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(QuotaEngine.class);
    private static final int LOCK_STRIPES = 256;

    private final QuotaConnection redis;
    private final QuotaScripts scripts;
    private final AccountDirectory accounts;
    private final TenantBudgets tenantBudgets;
    private final UsageBaseline baseline;
    private final QuotaConfig config;
    private final Clock clock;
    private final MeterRegistry meters;
    private final CircuitBreaker breaker;
    private final LocalLimiter local;
    private final QuotaReconciler reconciler;
    private final Object[] rebuildLocks = new Object[LOCK_STRIPES];
    private final Timer latency;
    /** By mode × route × reason (no string building per decision). */
    private final AtomicReferenceArray<Counter> decisionCounters = new AtomicReferenceArray<>(
            DecisionMode.values().length * Route.values().length * (RejectReason.values().length + 1));
    private final Counter rebuilds;
    private final ScheduledExecutorService background;
    private final long reservationTtlMs;
    private final Counter[] settleCounters;
    private final Counter[] releaseCounters;
    /** Expired records (full, a late settle still counts them): QUOTA_RESERVATION_RETENTION_MS. */
    private final long retentionMs;
    /**
     * Settled and released records (state and route only) stay one reservation TTL (ADR 0067): they only make a
     * repeat answer ALREADY_SETTLED/ALREADY_RELEASED; without them it answers UNKNOWN_RESERVATION, which changes
     * no counter either, so nothing is billed twice once they are gone.
     */
    private final long closedRetentionMs;
    /** Postgres quota rows (FAIL_TO_DATABASE, ADR 0072); null without a data source. */
    private final DatabaseQuota database;
    /** Decisions made in Postgres so far, and how many of them Redis has taken over: unequal = hand over first. */
    private final AtomicLong databaseGeneration = new AtomicLong();
    private volatile long handedOverGeneration;
    private final Object handoverLock = new Object();
    private final Counter handovers;

    private QuotaEngine(Builder b) {
        this.redis = Objects.requireNonNull(b.redis, "redis connection");
        this.accounts = Objects.requireNonNull(b.accounts, "accountDirectory");
        this.tenantBudgets = b.tenantBudgets == null ? TenantBudgets.NONE : b.tenantBudgets;
        this.baseline = Objects.requireNonNull(b.baseline, "usageBaseline");
        this.config = b.config == null ? QuotaConfig.defaults() : b.config;
        this.clock = b.clock == null ? Clock.systemUTC() : b.clock;
        this.meters = b.meters == null ? new SimpleMeterRegistry() : b.meters;
        this.scripts = new QuotaScripts(redis);
        this.reservationTtlMs = config.reservationTtl().toMillis();
        this.settleCounters = statusCounters("tokenmeter.quota.settles");
        this.releaseCounters = statusCounters("tokenmeter.quota.releases");
        this.retentionMs = config.reservationRetention().toMillis();
        this.closedRetentionMs = config.reservationTtl().toMillis();
        this.database = b.dataSource == null ? null : new DatabaseQuota(b.dataSource, config.reservationTtl(), config.reservationRetention());
        if (database == null && config.failurePolicy() == FailurePolicy.FAIL_TO_DATABASE) {
            throw new IllegalArgumentException("QUOTA_FAILURE_POLICY=FAIL_TO_DATABASE needs the quota engine's dataSource");
        }
        if (config.failurePolicy() == FailurePolicy.FAIL_TO_DATABASE) {
            databaseGeneration.set(1); // rows a previous process left pending: handed over before the first Redis answer
        }
        this.handovers = Counter.builder("tokenmeter.quota.handovers")
                .description("user-months decided in Postgres handed over to Redis").register(meters);
        this.breaker = new CircuitBreaker(config.breakerFailureThreshold(), config.breakerOpenDuration(),
                b.breakerNanoTime == null ? System::nanoTime : b.breakerNanoTime);
        this.local = new LocalLimiter(config.failOpenSharePercent(), config.reservationTtl().toMillis());
        this.reconciler = new QuotaReconciler(scripts, baseline, meters, clock, !config.reconcileInterval().isZero());
        for (int i = 0; i < LOCK_STRIPES; i++) rebuildLocks[i] = new Object();
        this.latency = Timer.builder("tokenmeter.quota.decision.latency").description("time to decide one reserve")
                .publishPercentiles(0.5, 0.99).register(meters);
        this.rebuilds = Counter.builder("tokenmeter.quota.rebuilds").description("month counters rebuilt from Postgres").register(meters);
        Gauge.builder("tokenmeter.quota.breaker.open", breaker, br -> br.state() == CircuitBreaker.State.CLOSED ? 0 : 1)
                .description("1 while the Redis circuit breaker is open or half-open").register(meters);
        boolean sweep = !config.sweepInterval().isZero();
        boolean reconcile = !config.reconcileInterval().isZero();
        this.background = sweep || reconcile ? Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "quota-maintenance");
            t.setDaemon(true);
            return t;
        }) : null;
        if (sweep) {
            long ms = config.sweepInterval().toMillis();
            background.scheduleWithFixedDelay(() -> guarded("sweep", this::sweepExpired), ms, ms, TimeUnit.MILLISECONDS);
        }
        if (reconcile) {
            long ms = config.reconcileInterval().toMillis();
            // The previous month too: its last events reach Postgres after the month has ended.
            background.scheduleWithFixedDelay(() -> guarded("reconcile", () -> {
                if (database != null) {
                    handOver(); // rows another edge decided in Postgres, if it has not handed them over itself
                }
                YearMonth m = currentMonth();
                reconciler.reconcileAll(m.minusMonths(1), m);
            }), ms, ms, TimeUnit.MILLISECONDS);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Loads the scripts now if Redis answers in time. Optional and never fatal: a script not loaded here is
     * loaded on first use, so a Redis that is slow or away while the edge starts (a deployment starting all at
     * once, a busy host) costs the first calls a SCRIPT LOAD, and the failure policy answers meanwhile, instead
     * of the edge exiting on a command timeout (and being restarted into the same slow Redis).
     */
    public QuotaEngine warmUp() {
        try {
            for (Script s : Script.values()) scripts.sha(s);
        } catch (RuntimeException e) {
            log.warn("quota scripts not loaded at start-up ({}); they are loaded on first use", e.toString());
        }
        return this;
    }

    // ------------------------------------------------------------------ reserve

    /**
     * Decides one call. Never throws for Redis or Postgres trouble (the failure policy answers);
     * throws IllegalArgumentException naming the argument for a bad request.
     */
    public Decision reserve(ReserveRequest request) {
        Objects.requireNonNull(request, "request");
        QuotaLimits.id("userId", request.userId());
        QuotaLimits.id("apiKeyId", request.apiKeyId());
        if (request.model() == null || request.model().isBlank()) throw new IllegalArgumentException("model must not be blank");
        QuotaLimits.amount("estimatedCostNanoUsd", request.estimatedCostNanoUsd());
        QuotaLimits.tokens("estimatedTokens", request.estimatedTokens());
        if (request.keyBudgetNanoUsd() != ReserveRequest.NO_KEY_BUDGET) {
            QuotaLimits.credit("keyBudgetNanoUsd", request.keyBudgetNanoUsd());
        }
        if (request.tenantBudgetNanoUsd() != ReserveRequest.NO_TENANT_BUDGET) {
            QuotaLimits.credit("tenantBudgetNanoUsd", request.tenantBudgetNanoUsd());
        }
        if (request.reservationName() != null) {
            UUID.fromString(request.reservationName()); // IllegalArgumentException when it is not one
            if (request.reservationName().length() != 36) throw new IllegalArgumentException("reservationName must be a UUID");
        }
        if (request.reservationTtlMs() < 0 || request.reservationTtlMs() > ReserveRequest.MAX_RESERVATION_TTL_MS) {
            throw new IllegalArgumentException("reservationTtlMs must be 0..." + ReserveRequest.MAX_RESERVATION_TTL_MS);
        }
        long start = System.nanoTime();
        Decision d = decide(request);
        latency.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
        decisionCounter(d).increment();
        return d;
    }

    private Counter[] statusCounters(String name) {
        SettleResult.Status[] all = SettleResult.Status.values();
        Counter[] out = new Counter[all.length];
        for (SettleResult.Status st : all) out[st.ordinal()] = meters.counter(name, "status", st.name());
        return out;
    }

    private Counter decisionCounter(Decision d) {
        int reasons = RejectReason.values().length + 1;
        int i = (d.mode().ordinal() * Route.values().length + d.route().ordinal()) * reasons
                + (d.rejectReason() == null ? 0 : d.rejectReason().ordinal() + 1);
        Counter c = decisionCounters.get(i);
        if (c == null) {
            String reason = d.rejectReason() == null ? "none" : d.rejectReason().name();
            c = Counter.builder("tokenmeter.quota.decisions").description("quota decisions by mode, route and reason")
                    .tag("mode", d.mode().name()).tag("route", d.route().name()).tag("reason", reason).register(meters);
            decisionCounters.set(i, c); // a race registers the same meter twice: the registry returns the same counter
        }
        return c;
    }

    /** The user's account, or the decision that answers without one: UNKNOWN_USER, or QUOTA_UNAVAILABLE when Postgres fails. */
    private record AccountLookup(Account account, Decision refusal) {}

    private AccountLookup lookUp(String userId, String what) {
        try {
            Optional<Account> found = accounts.find(userId);
            if (found.isEmpty()) {
                return new AccountLookup(null, new Decision(Route.REJECTED, RejectReason.UNKNOWN_USER, null,
                        new RateLimitStatus(0, 0, Duration.ZERO), new RateLimitStatus(0, 0, Duration.ZERO), 0, 0, List.of(),
                        SoftLimitStatus.UNKNOWN, DecisionMode.REDIS, null));
            }
            return new AccountLookup(found.get(), null);
        } catch (RuntimeException e) {
            log.warn("account lookup failed for {}: {}", what, e.toString());
            return new AccountLookup(null, unavailable(null, DecisionMode.FAIL_CLOSED));
        }
    }

    private Decision decide(ReserveRequest r) {
        AccountLookup found = lookUp(r.userId(), "a reserve");
        if (found.refusal() != null) {
            return found.refusal();
        }
        Account account = found.account();
        QuotaLimits.credit(account.userId(), account.monthlyCreditNanoUsd());
        if (r.tenantBudgetNanoUsd() == ReserveRequest.NO_TENANT_BUDGET && account.tenantId() != null) {
            try {
                long budget = tenantBudgets.monthlyBudgetNanoUsd(account.tenantId());
                if (budget != ReserveRequest.NO_TENANT_BUDGET) {
                    r = r.withTenantBudget(QuotaLimits.credit("tenant " + account.tenantId(), budget));
                }
            } catch (RuntimeException e) {
                log.warn("tenant budget lookup failed for a reserve: {}", e.toString());
                return unavailable(account, DecisionMode.FAIL_CLOSED);
            }
        }
        Instant now = clock.instant();
        YearMonth month = YearMonth.from(now.atZone(ZoneOffset.UTC));
        QuotaKeys keys = new QuotaKeys(account.userId());
        if (breaker.allow()) {
            try {
                handOverIfNeeded();
                Decision d = reserveInRedis(account, r, keys, month, now);
                breaker.onSuccess();
                return d;
            } catch (RedisException e) {
                breaker.onFailure();
                log.warn("Redis failed during reserve ({}), breaker {}", e.toString(), breaker.state());
            } catch (RebuildUnavailable e) {
                breaker.onSuccess();
                log.warn("rebuild of the month counters failed: {}", e.getCause() == null ? e.getMessage() : e.getCause().toString());
            } catch (HandoverUnavailable e) {
                breaker.onFailure(); // Redis must not answer before the hand-over: stay out of it, probe again later
                log.warn("hand-over of the Postgres quota rows failed: {}", e.getCause().toString());
            } catch (RuntimeException e) {
                // Unexpected (a bug, a malformed reply): never leave the breaker half-open, never guess.
                breaker.onFailure();
                log.error("quota decision failed unexpectedly", e);
            }
        }
        return degraded(account, r, keys, month, now);
    }

    private Decision degraded(Account account, ReserveRequest r, QuotaKeys keys, YearMonth month, Instant now) {
        if (config.failurePolicy() == FailurePolicy.FAIL_OPEN) {
            return local.reserve(account, r, month, now.toEpochMilli(), keys);
        }
        if (config.failurePolicy() == FailurePolicy.FAIL_TO_DATABASE) {
            if (!account.active()) {
                return new Decision(Route.REJECTED, RejectReason.ACCOUNT_DISABLED, null, null, null, account.monthlyCreditNanoUsd(), 0,
                        List.of(), SoftLimitStatus.UNKNOWN, DecisionMode.DATABASE, null);
            }
            try {
                databaseGeneration.incrementAndGet(); // before the write: a hand-over that misses it runs again
                return database.reserve(account, r, month, now.toEpochMilli(),
                        keys.newReservationId(month, r.apiKeyId(), 'd'), limits(account));
            } catch (RuntimeException e) {
                log.warn("quota decision in Postgres failed: {}", e.toString());
            }
        }
        return unavailable(account, DecisionMode.FAIL_CLOSED);
    }

    private DatabaseQuota.Limits limits(Account a) {
        return new DatabaseQuota.Limits(a.requestsPerMinute(), a.tokensPerMinute(), keyRequestsPerMinute(a), keyTokensPerMinute(a));
    }

    // ------------------------------------------------------------------ hand-over (FAIL_TO_DATABASE)

    /** Postgres failed during a hand-over: Redis must not answer yet; the failure policy does. */
    static final class HandoverUnavailable extends RuntimeException {
        HandoverUnavailable(Throwable cause) {
            super(cause);
        }
    }

    /**
     * Before Redis answers again after decisions were made in Postgres: Redis takes over their settles and open
     * reservations ({@link #handOver}). Callers wait for a hand-over in progress rather than answer from a Redis
     * that does not have it yet.
     */
    private void handOverIfNeeded() {
        if (database == null) {
            return;
        }
        // The breaker's probe under FAIL_TO_DATABASE also hands over what other edges decided in Postgres meanwhile.
        boolean probe = config.failurePolicy() == FailurePolicy.FAIL_TO_DATABASE && breaker.state() == CircuitBreaker.State.HALF_OPEN;
        if (!probe && databaseGeneration.get() == handedOverGeneration) {
            return;
        }
        synchronized (handoverLock) {
            long generation = databaseGeneration.get();
            if (!probe && generation == handedOverGeneration) {
                return;
            }
            handOver();
            handedOverGeneration = generation;
        }
    }

    /**
     * Hands every user-month that has Postgres-side quota state over to Redis (handover.lua, once per sequence
     * number): settles since the last hand-over are added to present counters, open and expired reservations become
     * Redis records, so they settle there from now on. Throws RedisException when Redis fails, HandoverUnavailable
     * when Postgres does; either way the rows stay pending for the next attempt. Returns the user-months handed over.
     */
    public int handOver() {
        long nowMs = clock.millis();
        int n;
        try {
            n = database.handOver(h -> applyHandover(h, nowMs), nowMs);
        } catch (RedisException e) {
            throw e;
        } catch (RuntimeException e) {
            if (e.getCause() instanceof RedisException re) {
                throw re;
            }
            throw new HandoverUnavailable(e);
        }
        handovers.increment(n);
        if (n > 0) {
            log.info("handed {} user-months decided in Postgres over to Redis", n);
        }
        return n;
    }

    private void applyHandover(DatabaseQuota.Handover h, long nowMs) {
        QuotaKeys keys = new QuotaKeys(h.userId());
        List<Object> args = new ArrayList<>(List.of(nowMs, h.seq(), h.settledNanoUsd(), h.personalNanoUsd(), retentionMs,
                monthTtlMs(h.month(), Instant.ofEpochMilli(nowMs)), h.month().toString()));
        for (DatabaseQuota.HandedReservation r : h.reservations()) {
            args.addAll(List.of(r.id(), r.state(), r.route(), r.estimateNanoUsd(), r.estimateTokens(), r.deadlineMs()));
        }
        scripts.call(Script.HANDOVER, new String[]{keys.reservations(), keys.deadlines(), keys.purge(), keys.reserved(),
                keys.settled(h.month()), keys.personal(h.month()), keys.handover(h.month()), keys.keyBudgets()}, args.toArray());
    }

    private Decision unavailable(Account a, DecisionMode mode) {
        Duration retry = config.breakerOpenDuration();
        RateLimitStatus req = new RateLimitStatus(a == null ? 0 : a.requestsPerMinute(), 0, retry);
        RateLimitStatus tok = new RateLimitStatus(a == null ? 0 : a.tokensPerMinute(), 0, retry);
        long credit = a == null ? 0 : a.monthlyCreditNanoUsd();
        return new Decision(Route.REJECTED, RejectReason.QUOTA_UNAVAILABLE, null, req, tok, credit, 0, List.of(),
                SoftLimitStatus.UNKNOWN, mode, retry);
    }

    // ------------------------------------------------------------------ admit

    /**
     * Charges {@code requests} and {@code tokens} to the caller's rate limits without a reservation (admit.lua, the
     * reserve script's GCRA on the same keys): batch ingest (one request per event, the events' tokens) and
     * bad-input rejections (one request). Rejected with RATE_LIMITED_REQUESTS/TOKENS and a retry-after when any of
     * the user's and the key's limits would be exceeded, and then nothing is charged; ACCOUNT_DISABLED and
     * UNKNOWN_USER as at reserve. Admitted decisions have route SERVICE_CREDIT and no reservation id; the credit is
     * not looked at (credit 0 in the decision). When Redis
     * cannot answer, the failure policy does: FAIL_OPEN admits (mode FAIL_OPEN), FAIL_CLOSED answers
     * QUOTA_UNAVAILABLE.
     */
    public Decision admit(String userId, String apiKeyId, long requests, long tokens) {
        QuotaLimits.id("userId", userId);
        QuotaLimits.id("apiKeyId", apiKeyId);
        QuotaLimits.tokens("requests", requests);
        if (tokens < 0) throw new IllegalArgumentException("tokens must not be negative, was " + tokens);
        // More than any limit empties the bucket whatever the number (lib.lua charged): no need to refuse it here.
        tokens = Math.min(tokens, QuotaLimits.MAX_CALL_TOKENS);
        AccountLookup found = lookUp(userId, "an admit");
        if (found.refusal() != null) {
            return found.refusal();
        }
        Account a = found.account();
        if (!a.active()) {
            return new Decision(Route.REJECTED, RejectReason.ACCOUNT_DISABLED, null, null, null, 0, 0,
                    List.of(), SoftLimitStatus.UNKNOWN, DecisionMode.REDIS, null);
        }
        if (breaker.allow()) {
            try {
                QuotaKeys keys = new QuotaKeys(a.userId());
                List<Object> out = scripts.call(Script.ADMIT,
                        new String[]{keys.userRequests(), keys.userTokens(), keys.keyRequests(apiKeyId), keys.keyTokens(apiKeyId)},
                        clock.millis(), requests, tokens, a.requestsPerMinute(), a.tokensPerMinute(), keyRequestsPerMinute(a),
                        keyTokensPerMinute(a));
                breaker.onSuccess();
                String reason = (String) out.get(0);
                RateLimitStatus req = new RateLimitStatus((Long) out.get(1), (Long) out.get(2), Duration.ofMillis((Long) out.get(3)));
                RateLimitStatus tok = new RateLimitStatus((Long) out.get(4), (Long) out.get(5), Duration.ofMillis((Long) out.get(6)));
                boolean ok = reason.isEmpty();
                return new Decision(ok ? Route.SERVICE_CREDIT : Route.REJECTED, ok ? null : RejectReason.valueOf(reason), null,
                        req, tok, 0, 0, List.of(), SoftLimitStatus.UNKNOWN, DecisionMode.REDIS,
                        ok ? null : Duration.ofMillis((Long) out.get(7)));
            } catch (RedisException e) {
                breaker.onFailure();
                log.warn("Redis failed during admit ({}), breaker {}", e.toString(), breaker.state());
            } catch (RuntimeException e) {
                breaker.onFailure();
                log.error("rate-limit admit failed unexpectedly", e);
            }
        }
        if (config.failurePolicy() == FailurePolicy.FAIL_OPEN) {
            return new Decision(Route.SERVICE_CREDIT, null, null, null, null, 0, 0, List.of(),
                    SoftLimitStatus.UNKNOWN, DecisionMode.FAIL_OPEN, null);
        }
        if (config.failurePolicy() == FailurePolicy.FAIL_TO_DATABASE) {
            try {
                return database.admit(a.userId(), apiKeyId, requests, tokens, clock.millis(), limits(a));
            } catch (RuntimeException e) {
                log.warn("rate-limit admit in Postgres failed: {}", e.toString());
            }
        }
        return unavailable(a, DecisionMode.FAIL_CLOSED);
    }

    private long keyRequestsPerMinute(Account a) {
        return Math.max(1, (long) a.requestsPerMinute() * config.apiKeyLimitPercent() / 100);
    }

    private Decision reserveInRedis(Account a, ReserveRequest r, QuotaKeys keys, YearMonth month, Instant now) {
        String id = r.reservationName() == null ? keys.newReservationId(month, r.apiKeyId(), false)
                : keys.reservationId(month, r.apiKeyId(), 'r', r.reservationName());
        if (r.tenantBudgetNanoUsd() < 0 || a.tenantId() == null) {
            return reserveUser(a, r, keys, month, now, id, "");
        }
        // Tenant budget (ADR 0081): the tenant's slot first (check and count atomically), then the user's script with the
        // same id; a call the user's side refuses or sends to the user's own key gives the tenant its estimate back.
        QuotaKeys.Tenant tenant = new QuotaKeys.Tenant(QuotaLimits.id("tenantId", a.tenantId()));
        boolean held = reserveTenant(tenant, id, r, month, now);
        Decision d;
        try {
            d = reserveUser(a, r, keys, month, now, id, held ? "1" : "0");
        } catch (RuntimeException e) {
            if (held) {
                closeTenantQuietly(tenant, id, -1, now);
            }
            throw e;
        }
        if (held && d.route() != Route.SERVICE_CREDIT) {
            closeTenant(tenant, id, -1, now);
        }
        return d;
    }

    /** The request's own reservation TTL (a batch's, ADR 0087), else QUOTA_RESERVATION_TTL_MS. */
    private long ttlMs(ReserveRequest r) {
        return r.reservationTtlMs() > 0 ? r.reservationTtlMs() : reservationTtlMs;
    }

    /** tenant_reserve.lua: true when the estimate fits the tenant's budget and is now counted in its spend. */
    private boolean reserveTenant(QuotaKeys.Tenant tenant, String id, ReserveRequest r, YearMonth month, Instant now) {
        for (int attempt = 0; attempt < 3; attempt++) {
            List<Object> out = scripts.call(Script.TENANT_RESERVE, tenant.all(), now.toEpochMilli(), id,
                    r.estimatedCostNanoUsd(), r.tenantBudgetNanoUsd(), ttlMs(r), retentionMs, config.sweepBatch(),
                    month.toString());
            switch ((String) out.get(0)) {
                case "OK" -> {
                    return true;
                }
                case "EXCEEDED", "CLOSED" -> {
                    return false;
                }
                default -> rebuildTenant(tenant, month, now);
            }
        }
        throw new RebuildUnavailable("month spend of a tenant still missing after 3 rebuilds", null);
    }

    /** tenant_close.lua: the tenant's true-up after the user's settle ({@code actual >= 0}) or release (-1). */
    private void closeTenant(QuotaKeys.Tenant tenant, String id, long actualNanoUsd, Instant now) {
        scripts.call(Script.TENANT_CLOSE, tenant.all(), now.toEpochMilli(), id, actualNanoUsd, closedRetentionMs);
    }

    /** A tenant release that may fail (Redis away): the tenant-side expiry frees the estimate at its deadline then. */
    private void closeTenantQuietly(QuotaKeys.Tenant tenant, String id, long actualNanoUsd, Instant now) {
        try {
            closeTenant(tenant, id, actualNanoUsd, now);
        } catch (RuntimeException e) {
            log.warn("tenant true-up failed ({}); the tenant reservation is freed at its deadline", e.toString());
        }
    }

    private Decision reserveUser(Account a, ReserveRequest r, QuotaKeys keys, YearMonth month, Instant now, String id,
                                 String tenantState) {
        long keyRpm = keyRequestsPerMinute(a);
        long keyTpm = keyTokensPerMinute(a);
        String[] k = {keys.reservations(), keys.deadlines(), keys.purge(), keys.reserved(), keys.settled(month),
                keys.personal(month), keys.thresholds(month), keys.userRequests(), keys.userTokens(),
                keys.keyRequests(r.apiKeyId()), keys.keyTokens(r.apiKeyId()), keys.keyBudgets()};
        Object[] args = {now.toEpochMilli(), id, r.estimatedCostNanoUsd(), r.estimatedTokens(), a.status(),
                a.monthlyCreditNanoUsd(), a.requestsPerMinute(), a.tokensPerMinute(), keyRpm, keyTpm,
                a.hasPersonalKey() ? 1 : 0, ttlMs(r), retentionMs, config.sweepBatch(), monthTtlMs(month, now),
                a.softLimitPercent(), QuotaKeys.keyBudgetField(month, r.apiKeyId()), r.keyBudgetNanoUsd(), tenantState};
        for (int attempt = 0; attempt < 3; attempt++) {
            List<Object> out = scripts.call(Script.RESERVE, k, args);
            if ("REBUILD".equals(out.get(0))) {
                rebuild(keys, month, now);
                continue;
            }
            if ("REBUILD_KEY".equals(out.get(0))) {
                rebuildKey(keys, month, r.apiKeyId(), now);
                continue;
            }
            Route route = Route.valueOf((String) out.get(1));
            String reason = (String) out.get(2);
            List<Integer> thresholds = new ArrayList<>();
            for (int i = 12; i < out.size(); i++) thresholds.add(((Long) out.get(i)).intValue());
            long retryMs = (Long) out.get(10);
            RejectReason rr = reason.isEmpty() ? null : RejectReason.valueOf(reason);
            boolean rateLimited = rr == RejectReason.RATE_LIMITED_REQUESTS || rr == RejectReason.RATE_LIMITED_TOKENS;
            return new Decision(route, rr, route == Route.REJECTED ? null : id,
                    new RateLimitStatus((Long) out.get(4), (Long) out.get(5), Duration.ofMillis((Long) out.get(6))),
                    new RateLimitStatus((Long) out.get(7), (Long) out.get(8), Duration.ofMillis((Long) out.get(9))),
                    a.monthlyCreditNanoUsd(), (Long) out.get(3), List.copyOf(thresholds),
                    SoftLimitStatus.of(a.softLimitPercent(), (Long) out.get(11)), DecisionMode.REDIS,
                    rateLimited ? Duration.ofMillis(retryMs) : null);
        }
        throw new RebuildUnavailable("month counters of a user still missing after 3 rebuilds", null);
    }

    // ------------------------------------------------------------------ rebuild

    /** Thrown when Postgres cannot give the baseline; the failure policy answers. */
    static final class RebuildUnavailable extends RuntimeException {
        RebuildUnavailable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * Writes the missing counters of one user and month: SET from Postgres plus the surviving open
     * reservations, never increments. One rebuild per user at a time: a lock stripe in this process,
     * then {@code SET <tag>:rebuild NX PX} across processes; the script itself only writes absent keys,
     * so even two racing rebuilds cannot add anything twice.
     */
    private void rebuild(QuotaKeys keys, YearMonth month, Instant now) {
        synchronized (rebuildLocks[Math.floorMod(keys.userId().hashCode(), LOCK_STRIPES)]) {
            var sync = redis.sync();
            if (sync.exists(keys.settled(month), keys.reserved()) == 2) return;
            String token = UUID.randomUUID().toString();
            long lockMs = config.rebuildLockTtl().toMillis();
            if (!"OK".equals(sync.set(keys.rebuildLock(), token, SetArgs.Builder.nx().px(lockMs)))) {
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(lockMs);
                while (System.nanoTime() < deadline) {
                    if (sync.exists(keys.settled(month), keys.reserved()) == 2) return;
                    sleep(10);
                }
                throw new RebuildUnavailable("another process's rebuild did not finish within " + lockMs + " ms", null);
            }
            try {
                if (sync.exists(keys.settled(month), keys.reserved()) == 2) return; // another process just finished
                UsageBaseline.MonthlyUsage base;
                try {
                    base = baseline.monthlyUsage(keys.userId(), month);
                    if (database != null) {
                        // Settles made in Postgres (FAIL_TO_DATABASE) that the sink may not have totalled yet.
                        long floor = database.baselineFloor(keys.userId(), month);
                        if (floor > base.serviceCreditNanoUsd()) {
                            base = new UsageBaseline.MonthlyUsage(floor, base.personalKeyNanoUsd());
                        }
                    }
                } catch (RuntimeException e) {
                    throw new RebuildUnavailable("usage baseline unavailable", e);
                }
                List<Object> written = scripts.call(Script.REBUILD, new String[]{keys.reservations(), keys.reserved(), keys.settled(month), keys.personal(month)},
                        Long.toString(base.serviceCreditNanoUsd()), Long.toString(base.personalKeyNanoUsd()),
                        Long.toString(monthTtlMs(month, now)));
                if ((Long) written.get(0) == 1 || (Long) written.get(1) == 1) {
                    rebuilds.increment();
                }
            } finally {
                // A plain DEL is enough: the lock only spares Postgres a herd; correctness comes from the NX writes.
                sync.del(keys.rebuildLock());
            }
        }
    }

    /**
     * Writes a key's missing month spend (ADR 0081): its service-credit usage in Postgres (the ledger, plus what
     * FAIL_TO_DATABASE settled for it that the ledger does not have yet) plus its open reservations in Redis, only where absent (rebuild_key.lua), so two
     * racing rebuilds cannot add anything twice. No cross-process lock: a key's first call of a month costs one
     * indexed query per edge at most.
     */
    private void rebuildKey(QuotaKeys keys, YearMonth month, String apiKeyId, Instant now) {
        long settled;
        try {
            settled = baseline.keyServiceCreditNanoUsd(keys.userId(), apiKeyId, month);
            if (database != null) {
                settled += database.keySettledNotInLedger(keys.userId(), apiKeyId, month);
            }
        } catch (RuntimeException e) {
            throw new RebuildUnavailable("key usage baseline unavailable", e);
        }
        long written = scripts.callLong(Script.REBUILD_KEY, new String[]{keys.reservations(), keys.keyBudgets()},
                QuotaKeys.keyBudgetField(month, apiKeyId), Long.toString(settled), Long.toString(monthTtlMs(month, now)),
                month.minusMonths(1).toString());
        if (written == 1) {
            rebuilds.increment();
        }
    }

    /**
     * Writes a tenant's missing month spend (ADR 0081): its users' service-credit usage in the ledger plus its open
     * tenant reservations of that month, only where absent (tenant_rebuild.lua), so racing rebuilds add nothing twice.
     * FAIL_TO_DATABASE does not know tenant budgets (ADR 0081), so there is nothing settled in Postgres to add.
     */
    private void rebuildTenant(QuotaKeys.Tenant tenant, YearMonth month, Instant now) {
        long settled;
        try {
            settled = baseline.tenantServiceCreditNanoUsd(tenant.tenantId(), month);
        } catch (RuntimeException e) {
            throw new RebuildUnavailable("tenant usage baseline unavailable", e);
        }
        long written = scripts.callLong(Script.TENANT_REBUILD, new String[]{tenant.spend(), tenant.reservations()},
                month.toString(), Long.toString(settled), Long.toString(monthTtlMs(month, now)), month.minusMonths(1).toString());
        if (written == 1) {
            rebuilds.increment();
        }
    }

    // ------------------------------------------------------------------ settle / release

    /**
     * Replaces a reservation's estimate with the actual cost, and trues up the token-rate limits (user and
     * API key) with the actual tokens: tokens above the estimate are charged (the next calls wait), unused
     * estimated tokens are given back as far as they are still owed. Idempotent: a repeat answers
     * ALREADY_SETTLED and changes nothing. Never throws for Redis trouble (answers UNAVAILABLE; the
     * reservation then expires and the reconciler catches up from Postgres).
     */
    public SettleResult settle(String reservationId, long actualCostNanoUsd, long actualTokens) {
        QuotaLimits.amount("actualCostNanoUsd", actualCostNanoUsd);
        QuotaLimits.tokens("actualTokens", actualTokens);
        QuotaKeys.ReservationId rid = QuotaKeys.parse(reservationId);
        SettleResult result = rid.database() ? closeInDatabase(rid, actualCostNanoUsd, actualTokens) : null;
        if (result != null) {
            // decided in Postgres and not handed over yet: settled there
        } else if (rid.local()) {
            result = local.close(reservationId, actualCostNanoUsd, actualTokens, clock.millis());
        } else {
            Account a = accountForClose(rid, "settle (thresholds and token true-up skipped)");
            QuotaKeys keys = new QuotaKeys(rid.userId());
            Instant now = clock.instant();
            result = guardedRedis(reservationId, () -> {
                List<Object> out = scripts.call(Script.SETTLE,
                        new String[]{keys.reservations(), keys.deadlines(), keys.purge(), keys.reserved(),
                                keys.settled(rid.month()), keys.personal(rid.month()), keys.thresholds(rid.month()),
                                keys.userTokens(), keyTokensKey(keys, rid), keys.keyBudgets()},
                        now.toEpochMilli(), reservationId, actualCostNanoUsd, actualTokens, closedRetentionMs,
                        a == null ? -1 : a.monthlyCreditNanoUsd(), monthTtlMs(rid.month(), now),
                        a == null ? 0 : a.tokensPerMinute(), a == null || rid.apiKeyId() == null ? 0 : keyTokensPerMinute(a),
                        a == null ? 0 : a.softLimitPercent(), rid.apiKeyId() == null ? 0 : 1);
                String route = (String) out.get(1);
                if ((Long) out.get(4) == 1) {
                    settleTenant(a, rid, actualCostNanoUsd, now);
                }
                List<Integer> thr = new ArrayList<>();
                for (int i = 5; i < out.size(); i++) thr.add(((Long) out.get(i)).intValue());
                return new SettleResult(reservationId, SettleResult.Status.valueOf((String) out.get(0)),
                        route.isEmpty() ? null : Route.valueOf(route), (Long) out.get(2), List.copyOf(thr),
                        a == null ? SoftLimitStatus.UNKNOWN : SoftLimitStatus.of(a.softLimitPercent(), (Long) out.get(3)));
            });
        }
        settleCounters[result.status().ordinal()].increment();
        return result;
    }

    /**
     * Frees a reservation (the upstream call failed) and gives its estimated tokens back to the token-rate
     * limits as far as they are still owed; the request stays counted. Idempotent; never throws for Redis
     * trouble.
     */
    public void release(String reservationId) {
        QuotaKeys.ReservationId rid = QuotaKeys.parse(reservationId);
        SettleResult result = rid.database() ? closeInDatabase(rid, -1, -1) : null;
        if (result != null) {
            // decided in Postgres and not handed over yet: released there
        } else if (rid.local()) {
            result = local.close(reservationId, -1, -1, clock.millis());
        } else {
            Account a = accountForClose(rid, "release (tokens not given back)");
            QuotaKeys keys = new QuotaKeys(rid.userId());
            Instant now = clock.instant();
            result = guardedRedis(reservationId, () -> {
                List<Object> out = scripts.call(Script.RELEASE,
                        new String[]{keys.reservations(), keys.deadlines(), keys.purge(), keys.reserved(),
                                keys.userTokens(), keyTokensKey(keys, rid), keys.keyBudgets()},
                        now.toEpochMilli(), reservationId, closedRetentionMs, a == null ? 0 : a.tokensPerMinute(),
                        a == null || rid.apiKeyId() == null ? 0 : keyTokensPerMinute(a));
                if (out.size() > 1 && (Long) out.get(1) == 1) {
                    settleTenant(a, rid, -1, now);
                }
                return SettleResult.of(reservationId, SettleResult.Status.valueOf((String) out.get(0)));
            });
        }
        releaseCounters[result.status().ordinal()].increment();
    }

    /**
     * The tenant's true-up after the user's settle (actual >= 0) or release (-1) of a call holding a tenant reservation.
     * Without the account (its lookup failed) it is skipped: the tenant-side expiry frees the estimate at its deadline.
     */
    private void settleTenant(Account a, QuotaKeys.ReservationId rid, long actualNanoUsd, Instant now) {
        if (a == null || a.tenantId() == null) {
            log.warn("tenant true-up skipped (no account); the tenant reservation is freed at its deadline");
            return;
        }
        closeTenantQuietly(new QuotaKeys.Tenant(a.tenantId()), rid.id(), actualNanoUsd, now);
    }

    /**
     * A tenant's service-credit spend in a month (ADR 0081), for the usage API: the quota engine's count (settled plus
     * open estimates) while it keeps one (a tenant with a budget), else the ledger's. Never rebuilds or writes.
     */
    public long tenantSpend(String tenantId, YearMonth month) {
        QuotaLimits.id("tenantId", tenantId);
        if (breaker.allow()) {
            try {
                String v = redis.sync().hget(new QuotaKeys.Tenant(tenantId).spend(), month.toString());
                breaker.onSuccess();
                if (v != null) {
                    return Long.parseLong(v);
                }
            } catch (RedisException e) {
                breaker.onFailure();
            }
        }
        return baseline.tenantServiceCreditNanoUsd(tenantId, month);
    }

    /**
     * The admin API changed a tenant's budget on this edge: the cached budget goes at once. When the budget was created
     * or removed, the tenant's month spend in Redis goes too ({@link #forgetTenantSpend}): without a budget nothing
     * counts it, so a new budget starts from the ledger. A new amount keeps the spend (it does not depend on the
     * amount; a rebuild would miss what the sink has not written yet). A Redis failure is logged (the change stands).
     */
    public void tenantBudgetChanged(String tenantId, boolean createdOrRemoved) {
        tenantBudgets.invalidate(tenantId);
        if (!createdOrRemoved) {
            return;
        }
        try {
            forgetTenantSpend(tenantId);
        } catch (RuntimeException e) {
            log.warn("tenant spend not dropped after a budget change ({}); it is counted on from Redis", e.toString());
        }
    }

    /**
     * Drops a tenant's spend of this month and the previous one (its budget was set, changed or removed): the next
     * reserve under a budget rebuilds it from the ledger and the open tenant reservations (ADR 0081), so spend made
     * while the tenant had no budget (not counted in Redis) is not missed.
     */
    public void forgetTenantSpend(String tenantId) {
        QuotaLimits.id("tenantId", tenantId);
        YearMonth m = currentMonth();
        redis.sync().hdel(new QuotaKeys.Tenant(tenantId).spend(), m.toString(), m.minusMonths(1).toString());
    }

    /**
     * Settles (actual >= 0) or releases (-1) a reservation decided in Postgres where it lives: in Postgres until it is
     * handed over (then null: the caller settles it in Redis, like any other). UNAVAILABLE when Postgres fails.
     */
    private SettleResult closeInDatabase(QuotaKeys.ReservationId rid, long actualNanoUsd, long actualTokens) {
        if (database == null) {
            return SettleResult.of(rid.id(), SettleResult.Status.UNAVAILABLE);
        }
        Account a = accountForClose(rid, "a Postgres settle (token true-up skipped)");
        try {
            databaseGeneration.incrementAndGet();
            return database.close(rid, actualNanoUsd, actualTokens, clock.millis(), a == null ? null : limits(a));
        } catch (RuntimeException e) {
            log.warn("settle/release in Postgres failed: {}", e.toString());
            return SettleResult.of(rid.id(), SettleResult.Status.UNAVAILABLE);
        }
    }

    private SettleResult guardedRedis(String id, java.util.function.Supplier<SettleResult> call) {
        if (breaker.allow()) {
            try {
                SettleResult r = call.get();
                breaker.onSuccess();
                return r;
            } catch (RedisException e) {
                breaker.onFailure();
                log.warn("Redis failed during settle/release ({}), breaker {}", e.toString(), breaker.state());
            }
        }
        return SettleResult.of(id, SettleResult.Status.UNAVAILABLE);
    }

    /** The account for settle/release; null (and the account-dependent parts skipped) when it cannot be read. */
    private Account accountForClose(QuotaKeys.ReservationId rid, String what) {
        try {
            return accounts.find(rid.userId()).orElse(null);
        } catch (RuntimeException e) {
            log.warn("account lookup failed during {}: {}", what, e.toString());
            return null;
        }
    }

    private long keyTokensPerMinute(Account a) {
        return Math.max(1, a.tokensPerMinute() * config.apiKeyLimitPercent() / 100);
    }

    /** The API key's token-rate key; ids issued before the key was part of the id name none (its limit is then left alone). */
    private static String keyTokensKey(QuotaKeys keys, QuotaKeys.ReservationId rid) {
        return rid.apiKeyId() == null ? keys.userTokens() : keys.keyTokens(rid.apiKeyId());
    }

    // ------------------------------------------------------------------ usage

    /**
     * Real-time usage of one user in one UTC month: settled + open reservations (current month) +
     * credit left. Rebuilds missing counters like reserve. While Redis is unavailable it answers from
     * Postgres (mode FAIL_OPEN/FAIL_CLOSED after the policy, reserved 0).
     *
     * @throws IllegalArgumentException for a malformed or unknown userId
     */
    public UsageSnapshot usage(String userId, YearMonth month) {
        QuotaLimits.id("userId", userId);
        Objects.requireNonNull(month, "month");
        Account a = accounts.find(userId).orElseThrow(() -> new IllegalArgumentException("unknown userId '" + userId + "'"));
        QuotaKeys keys = new QuotaKeys(userId);
        Instant now = clock.instant();
        boolean current = month.equals(YearMonth.from(now.atZone(ZoneOffset.UTC)));
        if (breaker.allow()) {
            try {
                handOverIfNeeded();
                for (int attempt = 0; attempt < 3; attempt++) {
                    List<Object> out = scripts.call(Script.USAGE,
                            new String[]{keys.reservations(), keys.deadlines(), keys.purge(), keys.reserved(),
                                    keys.settled(month), keys.personal(month), keys.keyBudgets()},
                            Long.toString(now.toEpochMilli()), Long.toString(config.reservationRetention().toMillis()),
                            Integer.toString(config.sweepBatch()));
                    if ("REBUILD".equals(out.get(0))) {
                        rebuild(keys, month, now);
                        continue;
                    }
                    breaker.onSuccess();
                    long settled = (Long) out.get(1);
                    long reserved = current ? (Long) out.get(2) : 0;
                    return new UsageSnapshot(userId, month, a.monthlyCreditNanoUsd(), settled, reserved, (Long) out.get(3),
                            Math.max(0, a.monthlyCreditNanoUsd() - settled - reserved), DecisionMode.REDIS);
                }
                breaker.onSuccess(); // Redis answered; the counters just would not stay
            } catch (RedisException e) {
                breaker.onFailure();
            } catch (RebuildUnavailable e) {
                breaker.onSuccess();
            } catch (HandoverUnavailable e) {
                breaker.onFailure(); // Redis must not answer before the hand-over: stay out of it, probe again later
                log.warn("hand-over of the Postgres quota rows failed: {}", e.getCause().toString());
            }
        }
        if (config.failurePolicy() == FailurePolicy.FAIL_TO_DATABASE) {
            long[] db = database.usage(userId, month);
            long reserved = current ? db[1] : 0;
            return new UsageSnapshot(userId, month, a.monthlyCreditNanoUsd(), db[0], reserved,
                    baseline.monthlyUsage(userId, month).personalKeyNanoUsd(),
                    Math.max(0, a.monthlyCreditNanoUsd() - db[0] - reserved), DecisionMode.DATABASE);
        }
        UsageBaseline.MonthlyUsage base = baseline.monthlyUsage(userId, month);
        return new UsageSnapshot(userId, month, a.monthlyCreditNanoUsd(), base.serviceCreditNanoUsd(), 0,
                base.personalKeyNanoUsd(), Math.max(0, a.monthlyCreditNanoUsd() - base.serviceCreditNanoUsd()),
                config.failurePolicy() == FailurePolicy.FAIL_OPEN ? DecisionMode.FAIL_OPEN : DecisionMode.FAIL_CLOSED);
    }

    /**
     * A key's service-credit spend in a month (ADR 0081), for the usage API: the quota engine's count (settled plus
     * open estimates) while it keeps one for the key (a key with a budget), else what Postgres has settled (the
     * ledger, plus what FAIL_TO_DATABASE settled that the ledger does not hold yet). Never rebuilds or writes.
     */
    public long keySpend(String userId, String apiKeyId, YearMonth month) {
        QuotaLimits.id("userId", userId);
        QuotaLimits.id("apiKeyId", apiKeyId);
        if (breaker.allow()) {
            try {
                String v = redis.sync().hget(new QuotaKeys(userId).keyBudgets(), QuotaKeys.keyBudgetField(month, apiKeyId));
                breaker.onSuccess();
                if (v != null) {
                    return Long.parseLong(v);
                }
            } catch (RedisException e) {
                breaker.onFailure();
            }
        }
        long settled = baseline.keyServiceCreditNanoUsd(userId, apiKeyId, month);
        return database == null ? settled : settled + database.keySettledNotInLedger(userId, apiKeyId, month);
    }

    // ------------------------------------------------------------------ maintenance

    /**
     * One sweeper pass: SCANs the users with open reservations ({@code {u:*}:res:dl}) and frees the
     * expired ones (at most 10,000 users per pass). On Redis Cluster, Lettuce's cluster SCAN walks every master
     * in turn with one cursor (ADR 0080), so one pass covers all of them. Returns the
     * number of reservations freed.
     */
    public long sweepExpired() {
        var sync = redis.sync();
        long freed = 0;
        int users = 0;
        String now = Long.toString(clock.millis());
        ScanCursor cursor = ScanCursor.INITIAL;
        do {
            KeyScanCursor<String> page = sync.scan(cursor, ScanArgs.Builder.matches("{u:*}:res:dl").limit(500));
            for (String dl : page.getKeys()) {
                String userId = dl.substring(3, dl.indexOf("}:"));
                QuotaKeys keys = new QuotaKeys(userId);
                freed += scripts.callLong(Script.SWEEP, new String[]{keys.reservations(), keys.deadlines(), keys.purge(), keys.reserved(),
                                keys.keyBudgets()},
                        now, Long.toString(config.reservationRetention().toMillis()), Integer.toString(config.sweepBatch()));
                users++;
            }
            cursor = page;
        } while (!cursor.isFinished() && users < 10_000);
        return freed;
    }

    public QuotaReconciler reconciler() {
        return reconciler;
    }

    /** The full text of the reserve script as loaded into Redis (for the benchmark's redis-benchmark run). */
    public static String reserveScriptSource() {
        return QuotaScripts.source(Script.RESERVE);
    }

    /** The user a reservation id belongs to (ids carry it); IllegalArgumentException for an id not issued here. */
    public static String reservationUser(String reservationId) {
        return QuotaKeys.parse(reservationId).userId();
    }

    /** The month a reservation id settles into (ids carry it); IllegalArgumentException for an id not issued here. */
    public static YearMonth reservationMonth(String reservationId) {
        return QuotaKeys.parse(reservationId).month();
    }

    public YearMonth currentMonth() {
        return YearMonth.from(clock.instant().atZone(ZoneOffset.UTC));
    }

    @Override
    public void close() {
        if (background != null) {
            background.shutdownNow();
        }
    }

    /** Month keys live until 35 days after the month ends (the reconciler and late settles still see them). */
    private static long monthTtlMs(YearMonth month, Instant now) {
        Instant end = month.plusMonths(1).atDay(1).atStartOfDay(ZoneOffset.UTC).toInstant();
        return Math.max(60_000, Duration.between(now, end).plusDays(35).toMillis());
    }

    private static void guarded(String what, Runnable r) {
        try {
            r.run();
        } catch (RuntimeException e) {
            log.warn("quota {} pass failed: {}", what, e.toString());
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RebuildUnavailable("interrupted while waiting for a rebuild", e);
        }
    }

    /** Builder; redis, accountDirectory and usageBaseline are required. */
    public static final class Builder {
        private QuotaConnection redis;
        private AccountDirectory accounts;
        private TenantBudgets tenantBudgets;
        private UsageBaseline baseline;
        private QuotaConfig config;
        private Clock clock;
        private MeterRegistry meters;
        private javax.sql.DataSource dataSource;
        private java.util.function.LongSupplier breakerNanoTime;

        private Builder() {}

        /** The breaker's clock (tests: decide when it half-opens); default System::nanoTime. */
        Builder breakerNanoTime(java.util.function.LongSupplier nanoTime) { this.breakerNanoTime = nanoTime; return this; }

        /**
         * Postgres for FAIL_TO_DATABASE (required with that policy) and for settling and handing over reservations
         * decided there (ADR 0072); optional with the other policies.
         */
        public Builder dataSource(javax.sql.DataSource d) { this.dataSource = d; return this; }

        /** One long-lived connection (see {@link QuotaRedis#connect}); the caller closes it after the engine. */
        public Builder redis(StatefulRedisConnection<String, String> connection) { this.redis = QuotaConnection.of(connection); return this; }
        /** A standalone or cluster connection ({@link QuotaRedis#commands()}, ADR 0080). */
        public Builder redis(QuotaConnection connection) { this.redis = connection; return this; }
        public Builder accountDirectory(AccountDirectory d) { this.accounts = d; return this; }
        /** Tenant budgets looked up on each reserve (ADR 0081); default none (a request may still carry one). */
        public Builder tenantBudgets(TenantBudgets t) { this.tenantBudgets = t; return this; }
        public Builder usageBaseline(UsageBaseline b) { this.baseline = b; return this; }
        public Builder config(QuotaConfig c) { this.config = c; return this; }
        public Builder clock(Clock c) { this.clock = c; return this; }
        /** May be null: a SimpleMeterRegistry is used. */
        public Builder meterRegistry(MeterRegistry m) { this.meters = m; return this; }

        public QuotaEngine build() {
            return new QuotaEngine(this);
        }
    }
}
