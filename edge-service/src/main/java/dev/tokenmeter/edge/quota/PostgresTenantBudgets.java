package dev.tokenmeter.edge.quota;

import static dev.tokenmeter.db.jooq.Tables.TENANT_BUDGET;

import dev.tokenmeter.edge.cache.ExpiringCache;
import java.time.Duration;
import java.util.Objects;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/**
 * Tenant budgets from {@code tenant_budget} (ADR 0081), cached per tenant like accounts (ACCOUNT_CACHE_TTL): a change
 * reaches other edges within the TTL, this one at once through {@link #invalidate}. Tenants without a budget are
 * cached too, so a tenant's calls cost no query per call either way. An expired entry is answered for up to
 * {@link #STALE_FOR} more while one reload runs (ADR 0071, like accounts and keys), so a slow Postgres never makes a
 * call wait (SlowNetworkIT: with 5 s round trips to Postgres the reserve waited for this lookup, p50 12 s).
 */
public final class PostgresTenantBudgets implements TenantBudgets {

    private static final int MAX_ENTRIES = 100_000;
    static final Duration STALE_FOR = Duration.ofSeconds(60);

    private final DSLContext db;
    private final ExpiringCache<String, Long> cache;

    public PostgresTenantBudgets(DataSource dataSource, Duration cacheTtl) {
        this.db = DSL.using(Objects.requireNonNull(dataSource, "dataSource"), SQLDialect.POSTGRES);
        this.cache = new ExpiringCache<>(cacheTtl, STALE_FOR, MAX_ENTRIES, System::nanoTime);
    }

    @Override
    public long monthlyBudgetNanoUsd(String tenantId) {
        return cache.get(tenantId, t -> db.select(TENANT_BUDGET.MONTHLY_BUDGET_NANO_USD).from(TENANT_BUDGET)
                .where(TENANT_BUDGET.TENANT_ID.eq(t)).fetchOptional(TENANT_BUDGET.MONTHLY_BUDGET_NANO_USD)
                .orElse(ReserveRequest.NO_TENANT_BUDGET));
    }

    @Override
    public void invalidate(String tenantId) {
        cache.invalidate(tenantId);
    }
}
