package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.db.jooq.tables.records.ApiKeyRecord;
import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.quota.QuotaLimits;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.events.validate.Labels;
import io.javalin.http.Context;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.UUID;

import static dev.tokenmeter.edge.admin.AdminError.bad;
import static dev.tokenmeter.edge.admin.AdminError.notFound;
import static dev.tokenmeter.edge.admin.JsonBody.JSON;

/**
 * {@code /admin/users/{userId}/keys}: issue a service key (shown in that answer only), list keys by prefix (never
 * the key or its hash), set a key's limits (ADR 0077), revoke one.
 */
final class ServiceKeyRoutes {

    private static final Logger LOG = LoggerFactory.getLogger(ServiceKeyRoutes.class);

    private final AdminQueries queries;
    private final ServiceKeyStore keys;
    private final Authenticator authenticator;
    private final Clock clock;

    ServiceKeyRoutes(AdminQueries queries, ServiceKeyStore keys, Authenticator authenticator, Clock clock) {
        this.queries = queries;
        this.keys = keys;
        this.authenticator = authenticator;
        this.clock = clock;
    }

    void issue(Context ctx) {
        String userId = ctx.pathParam("userId");
        UserRoutes.requireUser(queries, userId);
        ApiKeys.IssuedKey issued = ApiKeys.issue();
        String apiKeyId = "key_" + UUID.randomUUID().toString().replace("-", "");
        String project = ctx.bodyAsBytes().length == 0 ? null : project(JsonBody.object(ctx));
        keys.insert(apiKeyId, userId, issued);
        if (project != null) {
            keys.project(userId, apiKeyId, project);
        }
        LOG.info("issued service key {} (prefix {}) for user {}", apiKeyId, issued.prefix(), userId);
        ObjectNode n = JSON.createObjectNode();
        n.put("api_key_id", apiKeyId);
        n.put("user_id", userId);
        n.put("prefix", issued.prefix());
        n.put("key", issued.key());
        n.put("project", project);
        n.put("note", "The key is shown only in this response; it is stored as a salted hash.");
        ctx.header("Cache-Control", "no-store");
        JsonBody.write(ctx, 201, n);
    }

    void list(Context ctx) {
        String userId = ctx.pathParam("userId");
        UserRoutes.requireUser(queries, userId);
        ArrayNode data = JSON.createArrayNode();
        queries.serviceKeys(userId).forEach(k -> data.add(keyJson(k)));
        ObjectNode n = JSON.createObjectNode();
        n.set("data", data);
        JsonBody.write(ctx, 200, n);
    }

    /**
     * The key's limits (ADR 0077): {@code allowed_models} (an array, or null / [] to clear) and {@code expires_at} (an
     * ISO-8601 instant such as {@code 2026-12-31T23:59:59Z}, or null to clear) and its monthly budget
     * ({@code monthly_budget_usd} as an exact decimal string or {@code monthly_budget_nano_usd} as an integer, 0 to
     * {@link QuotaLimits#MAX_CREDIT_NANO_USD} = $1,000,000 like a credit, or null to clear; ADR 0081) and its own
     * response cache ({@code response_cache}: off, on, any, or null for what the plan says; ADR 0074); absent fields
     * are kept.
     */
    void patch(Context ctx) {
        String userId = ctx.pathParam("userId");
        String apiKeyId = ctx.pathParam("apiKeyId");
        JsonNode b = JsonBody.object(ctx);
        JsonBody.Given<List<String>> models = JsonBody.modelList(b, "allowed_models");
        JsonBody.Given<OffsetDateTime> expiresAt = JsonBody.instant(b, "expires_at");
        JsonBody.Given<Long> budget = JsonBody.money(b, "monthly_budget");
        if (budget.value() != null && budget.value() > QuotaLimits.MAX_CREDIT_NANO_USD) {
            throw bad("'monthly_budget' must be at most " + Money.formatUsd(QuotaLimits.MAX_CREDIT_NANO_USD) + " USD.",
                    "monthly_budget_nano_usd");
        }
        JsonBody.Given<String> cache = responseCache(b);
        if (!keys.limits(userId, apiKeyId, models, expiresAt, budget, cache)) {
            throw notFound("User '" + userId + "' has no key '" + apiKeyId + "'.");
        }
        authenticator.invalidateAll(); // the key's limits come with it: at once on this edge, elsewhere within the TTL
        LOG.info("changed the limits of service key {} of user {}", apiKeyId, userId);
        JsonBody.write(ctx, 200, keyJson(queries.serviceKey(userId, apiKeyId)));
    }

    /** The body's {@code response_cache}: absent, null (the plan decides) or one of off, on, any (V19's CHECK). */
    private static JsonBody.Given<String> responseCache(JsonNode b) {
        JsonNode c = b.get("response_cache");
        if (c == null) {
            return JsonBody.Given.absent();
        }
        if (c.isNull()) {
            return new JsonBody.Given<>(true, null);
        }
        if (!c.isTextual() || !List.of("off", "on", "any").contains(c.textValue())) {
            throw bad("'response_cache' must be \"off\", \"on\", \"any\" or null (the plan decides).", "response_cache");
        }
        return new JsonBody.Given<>(true, c.textValue());
    }

    private static ObjectNode keyJson(ApiKeyRecord k) {
        ObjectNode n = JSON.createObjectNode();
        n.put("api_key_id", k.getApiKeyId());
        n.put("prefix", ApiKeys.SCHEME + k.getKeyPrefix() + "_…");
        n.put("created_at", k.getCreatedAt().toInstant().toString());
        putInstant(n, "revoked_at", k.getRevokedAt());
        JsonBody.putModels(n, "allowed_models", k.getAllowedModels());
        putInstant(n, "expires_at", k.getExpiresAt());
        n.put("project", k.getProject());
        JsonBody.putNullable(n, "monthly_budget_nano_usd", k.getMonthlyBudgetNanoUsd());
        if (k.getMonthlyBudgetNanoUsd() == null) {
            n.putNull("monthly_budget_usd");
        } else {
            n.put("monthly_budget_usd", Money.formatUsd(k.getMonthlyBudgetNanoUsd()));
        }
        n.put("response_cache", k.getResponseCache());
        return n;
    }

    private static void putInstant(ObjectNode n, String field, OffsetDateTime t) {
        if (t == null) {
            n.putNull(field);
        } else {
            n.put(field, t.toInstant().toString());
        }
    }

    /** PUT .../keys/{apiKeyId}/project: the project the key's calls are attributed to (issue 17, ADR 0078). */
    void project(Context ctx) {
        String userId = ctx.pathParam("userId");
        String apiKeyId = ctx.pathParam("apiKeyId");
        JsonNode b = JsonBody.object(ctx);
        if (!b.has("project")) {
            throw bad("'project' is required: a name of 1-64 characters of [A-Za-z0-9._-], or null for none.", "project");
        }
        String project = project(b);
        if (!keys.project(userId, apiKeyId, project)) {
            throw notFound("User '" + userId + "' has no key '" + apiKeyId + "'.");
        }
        // This edge's next call sees it at once; other edges within their API_KEY_CACHE_TTL.
        authenticator.invalidateAll();
        LOG.info("service key {} of user {}: project {}", apiKeyId, userId, project);
        ObjectNode n = JSON.createObjectNode();
        n.put("api_key_id", apiKeyId);
        n.put("project", project);
        JsonBody.write(ctx, 200, n);
    }

    /** The body's project: null (absent or null) or a name within the bounds of {@link Labels#projectProblem}. */
    private static String project(JsonNode b) {
        JsonNode p = b.get("project");
        if (p == null || p.isNull()) {
            return null;
        }
        String problem = p.isTextual() ? Labels.projectProblem("project", p.textValue())
                : "project must be a string or null";
        if (problem != null) {
            throw bad(problem, "project");
        }
        return p.textValue();
    }

    void revoke(Context ctx) {
        String userId = ctx.pathParam("userId");
        String apiKeyId = ctx.pathParam("apiKeyId");
        // Revoking a revoked key again answers 200 as the first time did.
        if (!keys.revoke(userId, apiKeyId, OffsetDateTime.now(clock)) && !queries.serviceKeyExists(userId, apiKeyId)) {
            throw notFound("User '" + userId + "' has no key '" + apiKeyId + "'.");
        }
        // This edge forgets at once; other edges within their API_KEY_CACHE_TTL.
        authenticator.invalidateAll();
        LOG.info("revoked service key {} of user {}", apiKeyId, userId);
        ObjectNode n = JSON.createObjectNode();
        n.put("api_key_id", apiKeyId);
        n.put("revoked", true);
        JsonBody.write(ctx, 200, n);
    }
}
