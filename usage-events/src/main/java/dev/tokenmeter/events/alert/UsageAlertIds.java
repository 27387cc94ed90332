package dev.tokenmeter.events.alert;

import java.time.YearMonth;

/**
 * The id of a {@code UsageAlert}: {@code userId|yyyy-MM|thresholdPercent}, one per user, month and threshold.
 * Both producers of alerts (the aggregator from billed usage, the edge from its quota decisions) use it, so a
 * consumer that keeps the first alert per id sees each crossing once.
 */
public final class UsageAlertIds {

    private UsageAlertIds() {
    }

    public static String of(String userId, YearMonth month, int thresholdPercent) {
        return userId + "|" + month + "|" + thresholdPercent;
    }
}
