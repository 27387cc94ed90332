package dev.tokenmeter.edge.quota;

import java.time.YearMonth;

/**
 * Real-time usage of one user in one UTC calendar month, nano-USD: settled service-credit usage,
 * open service-credit reservations (current month only; they are not yet in the month's total),
 * usage on the user's own key (tracked, not counted against the credit), and the credit left.
 */
public record UsageSnapshot(String userId, YearMonth month, long creditNanoUsd, long settledNanoUsd,
                            long reservedNanoUsd, long personalKeyNanoUsd, long remainingCreditNanoUsd,
                            DecisionMode mode) {}
