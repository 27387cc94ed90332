package dev.tokenmeter.edge.quota;

import dev.tokenmeter.edge.account.Account;
import dev.tokenmeter.edge.account.AccountDirectory;

import java.time.YearMonth;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * In-memory accounts for the quota benchmarks: any user id is an active account with the largest credit and no
 * practical rate limit, and Postgres reports no usage — so a benchmark measures the engine, not a limit or a lookup.
 */
final class BenchmarkAccounts {

    private BenchmarkAccounts() {
    }

    static Account unlimited(String userId) {
        return new Account(userId, "t", "ACTIVE", QuotaLimits.MAX_CREDIT_NANO_USD, Integer.MAX_VALUE, Long.MAX_VALUE / 4, 80, false);
    }

    /** Answers every user id with {@link #unlimited}, made once per user. */
    static AccountDirectory anyUserUnlimited() {
        Map<String, Account> accounts = new ConcurrentHashMap<>();
        return new AccountDirectory() {
            @Override
            public Optional<Account> find(String userId) {
                return Optional.of(accounts.computeIfAbsent(userId, BenchmarkAccounts::unlimited));
            }

            @Override
            public void invalidate(String userId) {
            }
        };
    }

    static UsageBaseline noUsage() {
        return new UsageBaseline() {
            @Override
            public MonthlyUsage monthlyUsage(String userId, YearMonth month) {
                return MonthlyUsage.NONE;
            }

            @Override
            public long keyServiceCreditNanoUsd(String userId, String apiKeyId, YearMonth month) {
                return 0;
            }

            @Override
            public long tenantServiceCreditNanoUsd(String tenantId, YearMonth month) {
                return 0;
            }

            @Override
            public Map<String, Long> serviceCreditByUser(YearMonth month) {
                return Map.of();
            }
        };
    }
}
