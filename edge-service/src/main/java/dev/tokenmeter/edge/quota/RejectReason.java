package dev.tokenmeter.edge.quota;

/**
 * Why a call was rejected. KEY_BUDGET_EXCEEDED: the API key's own monthly budget would be passed; TENANT_BUDGET_EXCEEDED:
 * the monthly budget its user's tenant shares would be (both ADR 0081).
 */
public enum RejectReason {
    CREDIT_EXHAUSTED, KEY_BUDGET_EXCEEDED, TENANT_BUDGET_EXCEEDED, RATE_LIMITED_REQUESTS, RATE_LIMITED_TOKENS, ACCOUNT_DISABLED, UNKNOWN_USER, QUOTA_UNAVAILABLE
}
