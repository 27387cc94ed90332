package dev.tokenmeter.edge.quota;

/** One call to decide. Amounts in nano-USD; bounds in {@link QuotaLimits}. */
public record ReserveRequest(String userId, String apiKeyId, String model, long estimatedCostNanoUsd, long estimatedTokens) {}
