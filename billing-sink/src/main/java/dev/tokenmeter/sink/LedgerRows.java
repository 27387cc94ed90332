package dev.tokenmeter.sink;

import dev.tokenmeter.db.jooq.tables.records.UsageLedgerRecord;
import dev.tokenmeter.events.UsageEvent;
import org.jooq.JSONB;

import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;

/** Maps a usage event to its ledger row. The billing month is the UTC calendar month of occurredAt. */
final class LedgerRows {

    private LedgerRows() {
    }

    static LocalDate billingMonth(Instant occurredAt) {
        return occurredAt.atZone(ZoneOffset.UTC).toLocalDate().withDayOfMonth(1);
    }

    static UsageLedgerRecord toRecord(UsageEvent e) {
        UsageLedgerRecord r = new UsageLedgerRecord();
        r.setEventId(UUID.fromString(e.getEventId()));
        r.setBillingMonth(billingMonth(e.getOccurredAt()));
        r.setOccurredAt(utc(e.getOccurredAt()));
        r.setReceivedAt(utc(e.getReceivedAt()));
        r.setTenantId(e.getTenantId());
        r.setUserId(e.getUserId());
        r.setApiKeyId(e.getApiKeyId());
        r.setKeySource(e.getKeySource().name());
        r.setProvider(e.getProvider());
        r.setModel(e.getModel());
        r.setEndpoint(e.getEndpoint());
        r.setUpstreamRequestId(e.getUpstreamRequestId());
        r.setOutcome(e.getOutcome().name());
        r.setHttpStatus(e.getHttpStatus());
        r.setPromptTokens(e.getPromptTokens());
        r.setCachedPromptTokens(e.getCachedPromptTokens());
        r.setCompletionTokens(e.getCompletionTokens());
        r.setReasoningTokens(e.getReasoningTokens());
        r.setCostNanoUsd(e.getCostNanoUsd());
        r.setPriceVersion(e.getPriceVersion());
        r.setUsageSource(e.getUsageSource().name());
        r.setStreamed(e.getStreamed());
        r.setCacheHit(e.getCacheHit());
        r.setReservationId(e.getReservationId());
        r.setLatencyMs(e.getLatencyMs());
        r.setEdgeInstance(e.getEdgeInstance());
        r.setAttributes(JSONB.valueOf(json(e.getAttributes())));
        return r;
    }

    static OffsetDateTime utc(Instant t) {
        return t == null ? null : t.atOffset(ZoneOffset.UTC);
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
