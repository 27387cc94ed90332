package dev.tokenmeter.edge.quota;

/** Why a call was rejected. */
public enum RejectReason {
    CREDIT_EXHAUSTED, RATE_LIMITED_REQUESTS, RATE_LIMITED_TOKENS, ACCOUNT_DISABLED, UNKNOWN_USER, QUOTA_UNAVAILABLE
}
