package dev.tokenmeter.sink;

import dev.tokenmeter.db.jooq.tables.records.UsageLedgerRecord;
import dev.tokenmeter.events.UsageEvent;
import org.jooq.JSONB;

import java.util.UUID;

/**
 * A usage event as the jOOQ ledger record it must become, built field by field: the reference the COPY
 * path is checked against, and the rows of the benchmark's baseline contenders.
 */
final class LedgerRecords {

    private LedgerRecords() {
    }

    static UsageLedgerRecord of(UsageEvent e) {
        UsageLedgerRecord r = new UsageLedgerRecord();
        r.setEventId(UUID.fromString(e.getEventId()));
        r.setBillingMonth(LedgerRows.billingMonth(e.getOccurredAt()));
        r.setOccurredAt(LedgerRows.utc(e.getOccurredAt()));
        r.setReceivedAt(LedgerRows.utc(e.getReceivedAt()));
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
        r.setAttributes(JSONB.valueOf(LedgerRows.json(e.getAttributes())));
        r.setAnsweredModel(e.getAnsweredModel());
        r.setServiceTier(e.getServiceTier() == null ? "standard" : e.getServiceTier());
        r.setResponseCacheHit(e.getResponseCacheHit());
        r.setResponseCacheAgeMs(e.getResponseCacheAgeMs());
        r.setUpstreamCostNanoUsd(LedgerRows.upstreamCost(e));
        r.setProject(e.getProject());
        r.setLabels(JSONB.valueOf(LedgerRows.json(e.getLabels())));
        return r;
    }
}
