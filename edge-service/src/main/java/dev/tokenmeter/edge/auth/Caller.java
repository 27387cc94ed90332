package dev.tokenmeter.edge.auth;

/** Who is calling: the service API key's id (never the key), its user and the user's tenant. */
public record Caller(String apiKeyId, String userId, String tenantId) {
}
