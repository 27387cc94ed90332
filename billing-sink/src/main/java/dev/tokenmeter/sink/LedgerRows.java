package dev.tokenmeter.sink;

import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Map;
import java.util.TreeMap;

/**
 * How usage-event values become ledger values: the billing month is the UTC calendar month of occurredAt,
 * timestamps are UTC, attributes a flat JSON object. {@link LedgerCopy} writes the rows.
 */
final class LedgerRows {

    private LedgerRows() {
    }

    static LocalDate billingMonth(Instant occurredAt) {
        return occurredAt.atZone(ZoneOffset.UTC).toLocalDate().withDayOfMonth(1);
    }

    static OffsetDateTime utc(Instant t) {
        return t == null ? null : t.atOffset(ZoneOffset.UTC);
    }

    /** The tier the event was billed at; a v1 event (none) was billed at standard, the only tier then (ADR 0068). */
    static String serviceTier(dev.tokenmeter.events.UsageEvent e) {
        return e.getServiceTier() == null ? "standard" : e.getServiceTier();
    }

    /** What the upstream charged: a v1/v2 event (none given) cost what it was billed; a cache hit says 0 (ADR 0075). */
    static long upstreamCost(dev.tokenmeter.events.UsageEvent e) {
        return e.getUpstreamCostNanoUsd() == null ? e.getCostNanoUsd() : e.getUpstreamCostNanoUsd();
    }

    /** A flat JSON object of strings, keys sorted. */
    static String json(Map<String, String> attributes) {
        if (attributes.isEmpty()) {
            return "{}";
        }
        StringBuilder sb = new StringBuilder("{");
        boolean first = true;
        for (Map.Entry<String, String> e : new TreeMap<>(attributes).entrySet()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            quote(sb, e.getKey());
            sb.append(':');
            quote(sb, e.getValue());
        }
        return sb.append('}').toString();
    }

    private static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
