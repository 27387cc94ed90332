package dev.tokenmeter.edge.quota;

/**
 * One call to decide. Amounts in nano-USD; bounds in {@link QuotaLimits}. {@code keyBudgetNanoUsd}: the API key's
 * monthly budget ({@code api_key.monthly_budget_nano_usd}, ADR 0081), -1 for none. {@code tenantBudgetNanoUsd}: the
 * monthly budget of the user's tenant ({@code tenant_budget}, ADR 0081), -1 for none.
 */
public record ReserveRequest(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                             long keyBudgetNanoUsd, long tenantBudgetNanoUsd) {

    public static final long NO_KEY_BUDGET = -1;
    public static final long NO_TENANT_BUDGET = -1;

    /** A call whose tenant has no budget. */
    public ReserveRequest(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens,
                          long keyBudgetNanoUsd) {
        this(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens, keyBudgetNanoUsd, NO_TENANT_BUDGET);
    }

    /** A call whose key has no budget of its own. */
    public ReserveRequest(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens) {
        this(userId, apiKeyId, model, estimatedCostNanoUsd, estimatedTokens, NO_KEY_BUDGET, NO_TENANT_BUDGET);
    }
}
