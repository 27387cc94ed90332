package dev.tokenmeter.aggregator;

import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;

/**
 * Event-time periods in UTC. Hours are fixed 3,600,000 ms buckets; months are calendar months
 * (28–31 days, leap years included) computed with java.time, not fixed-size windows.
 */
final class Periods {

    private Periods() {
    }

    static long hourStart(Instant t) {
        return t.truncatedTo(ChronoUnit.HOURS).toEpochMilli();
    }

    static long hourEnd(Instant t) {
        return hourStart(t) + 3_600_000L;
    }

    static YearMonth month(Instant t) {
        return YearMonth.from(t.atZone(ZoneOffset.UTC));
    }

    static long monthStart(YearMonth m) {
        return m.atDay(1).atStartOfDay(ZoneOffset.UTC).toInstant().toEpochMilli();
    }

    static long monthEnd(YearMonth m) {
        return monthStart(m.plusMonths(1));
    }
}
