package dev.tokenmeter.edge.account;

/**
 * Effective limits of one user (view {@code account_limits}: plan values with per-user overrides) and
 * whether the user has an own, unrevoked provider key. Money in nano-USD.
 */
public record Account(String userId, String tenantId, String status, long monthlyCreditNanoUsd,
                      int requestsPerMinute, long tokensPerMinute, int softLimitPercent, boolean hasPersonalKey) {

    public static final String ACTIVE = "ACTIVE";

    public boolean active() {
        return ACTIVE.equals(status);
    }
}
