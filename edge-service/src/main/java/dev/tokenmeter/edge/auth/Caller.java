package dev.tokenmeter.edge.auth;

/**
 * Who is calling: the service API key's id (never the key), its user and the user's tenant, and whether the
 * user's account is active. A caller whose account is not active is refused with 403 {@code account_disabled} on
 * every route before any other work (issue 14, finding 6).
 */
public record Caller(String apiKeyId, String userId, String tenantId, boolean active) {

    /** An active caller. */
    public Caller(String apiKeyId, String userId, String tenantId) {
        this(apiKeyId, userId, tenantId, true);
    }
}
