package dev.tokenmeter.edge.quota;

/**
 * One call to decide. Amounts in nano-USD; bounds in {@link QuotaLimits}. {@code keyBudgetNanoUsd}: the API key's
 * monthly budget ({@code api_key.monthly_budget_nano_usd}, ADR 0081), -1 for none. {@code tenantBudgetNanoUsd}: the
 * monthly budget of the user's tenant ({@code tenant_budget}, ADR 0081), -1 for none. {@code reservationName}: null
 * (a random reservation id), or a UUID the reservation id ends in (a batch's, ADR 0087: named after the batch);
 * {@code reservationTtlMs}: 0 for the engine's QUOTA_RESERVATION_TTL_MS, else how long this reservation holds its
 * estimate before it expires (a batch's 25 h), at most {@link #MAX_RESERVATION_TTL_MS}.
 */
public record ReserveRequest(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                             long keyBudgetNanoUsd, long tenantBudgetNanoUsd, String reservationName, long reservationTtlMs) {

    public static final long NO_KEY_BUDGET = -1;
    public static final long NO_TENANT_BUDGET = -1;
    /** The longest TTL a reservation may ask for: 48 h (a batch runs at most 24 h, ADR 0087). */
    public static final long MAX_RESERVATION_TTL_MS = 48L * 3600 * 1000;

    /** A call with a random reservation id and the engine's TTL. */
    public ReserveRequest(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                          long keyBudgetNanoUsd, long tenantBudgetNanoUsd) {
        this(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens, keyBudgetNanoUsd, tenantBudgetNanoUsd, null, 0);
    }

    /** A call whose tenant has no budget. */
    public ReserveRequest(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                          long keyBudgetNanoUsd) {
        this(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens, keyBudgetNanoUsd, NO_TENANT_BUDGET);
    }

    /** A call whose key has no budget of its own. */
    public ReserveRequest(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens) {
        this(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens, NO_KEY_BUDGET, NO_TENANT_BUDGET);
    }

    /** This request with the tenant's budget. */
    ReserveRequest withTenantBudget(long tenantBudget) {
        return new ReserveRequest(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens, keyBudgetNanoUsd, tenantBudget,
                reservationName, reservationTtlMs);
    }
}
