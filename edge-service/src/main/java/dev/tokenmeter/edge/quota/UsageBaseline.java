package dev.tokenmeter.edge.quota;

import java.time.YearMonth;
import java.util.Map;

/** The truth the Redis counters are rebuilt from and reconciled against (the sink's monthly totals). */
public interface UsageBaseline {

    /** Usage of one user in one month, nano-USD. */
    record MonthlyUsage(long serviceCreditNanoUsd, long personalKeyNanoUsd) {
        public static final MonthlyUsage NONE = new MonthlyUsage(0, 0);
    }

    MonthlyUsage monthlyUsage(String userId, YearMonth month);

    /** Service-credit usage of one API key of a user in one month, nano-USD (a key budget's rebuild, ADR 0081). */
    long keyServiceCreditNanoUsd(String userId, String apiKeyId, YearMonth month);

    /** Service-credit usage of all users of a tenant in one month, nano-USD (a tenant budget's rebuild, ADR 0081). */
    long tenantServiceCreditNanoUsd(String tenantId, YearMonth month);

    /** Service-credit usage per user with any usage in the month (for the reconciler). */
    Map<String, Long> serviceCreditByUser(YearMonth month);
}
