package dev.tokenmeter.edge.auth;

import dev.tokenmeter.edge.responsecache.CachePolicy;

import java.util.Objects;

/**
 * Who is calling: the service API key's id (never the key), its user and the user's tenant, whether the user's
 * account is active, and the response-cache policy of its plan and key (ADR 0074). A caller whose account is not
 * active is refused with 403 {@code account_disabled} on every route before any other work (issue 14, finding 6).
 * {@code models}: the plan's and key's model allow-lists (ADR 0077). {@code expired}: the key's {@code expires_at} has
 * passed (checked on every call against the clock, not the key cache's TTL): refused with 401 {@code api_key_expired}.
 * {@code project}: the key's project, null for none (ADR 0078). {@code keyBudgetNanoUsd}: the key's monthly budget
 * ({@code api_key.monthly_budget_nano_usd}), null for none (ADR 0081); cached with the key like its allow-list.
 */
public record Caller(String apiKeyId, String userId, String tenantId, boolean active, CachePolicy cache, ModelAllowList models,
                     boolean expired, String project, Long keyBudgetNanoUsd) {

    public Caller {
        Objects.requireNonNull(cache, "cache");
        Objects.requireNonNull(models, "models");
    }

    /** A caller whose key has no monthly budget of its own ({@code keyBudgetNanoUsd}: null = none, ADR 0081). */
    public Caller(String apiKeyId, String userId, String tenantId, boolean active, CachePolicy cache, ModelAllowList models,
                  boolean expired, String project) {
        this(apiKeyId, userId, tenantId, active, cache, models, expired, project, null);
    }

    /** A caller whose key has no project (issue 17: the project is the key's api_key.project, ADR 0078). */
    public Caller(String apiKeyId, String userId, String tenantId, boolean active, CachePolicy cache, ModelAllowList models,
                  boolean expired) {
        this(apiKeyId, userId, tenantId, active, cache, models, expired, null);
    }

    /** A caller without model allow-lists, whose key has not expired. */
    public Caller(String apiKeyId, String userId, String tenantId, boolean active, CachePolicy cache) {
        this(apiKeyId, userId, tenantId, active, cache, ModelAllowList.ANY, false);
    }

    /** A caller without a response cache. */
    public Caller(String apiKeyId, String userId, String tenantId, boolean active) {
        this(apiKeyId, userId, tenantId, active, CachePolicy.OFF);
    }

    /** An active caller without a response cache. */
    public Caller(String apiKeyId, String userId, String tenantId) {
        this(apiKeyId, userId, tenantId, true);
    }
}
