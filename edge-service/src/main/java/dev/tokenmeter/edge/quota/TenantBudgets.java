package dev.tokenmeter.edge.quota;

/**
 * Where the quota engine finds a tenant's monthly budget (table {@code tenant_budget}, ADR 0081), looked up with the
 * user's account on every reserve: {@link ReserveRequest#NO_TENANT_BUDGET} for a tenant without one.
 */
public interface TenantBudgets {

    /** No tenant has a budget. */
    TenantBudgets NONE = new TenantBudgets() {
        @Override
        public long monthlyBudgetNanoUsd(String tenantId) {
            return ReserveRequest.NO_TENANT_BUDGET;
        }

        @Override
        public void invalidate(String tenantId) {
        }
    };

    /** The tenant's monthly budget in nano-USD, or {@link ReserveRequest#NO_TENANT_BUDGET}; throws when it cannot be read. */
    long monthlyBudgetNanoUsd(String tenantId);

    /** Forgets a cached budget (the admin API changed it on this edge). */
    void invalidate(String tenantId);
}
