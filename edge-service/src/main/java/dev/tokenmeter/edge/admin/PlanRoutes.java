package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.admin.PlanStore.PlanFields;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.events.money.Money;
import io.javalin.http.Context;

import static dev.tokenmeter.edge.admin.AdminError.bad;
import static dev.tokenmeter.edge.admin.JsonBody.JSON;

/** {@code PUT /admin/plans/{planId}}: create (201) or update (200) a plan, its model allow-list included (ADR 0077). */
final class PlanRoutes {

    private final AdminQueries queries;
    private final PlanStore plans;
    private final AccountChanges changes;
    private final Authenticator authenticator;

    PlanRoutes(AdminQueries queries, PlanStore plans, AccountChanges changes, Authenticator authenticator) {
        this.authenticator = authenticator;
        this.queries = queries;
        this.plans = plans;
        this.changes = changes;
    }

    void put(Context ctx) {
        String planId = ctx.pathParam("planId");
        PlanFields fields = fields(JsonBody.object(ctx));
        boolean exists = queries.planExists(planId);
        if (exists) {
            plans.update(planId, fields);
        } else {
            if (fields.monthlyCreditNanoUsd() == null || fields.requestsPerMinute() == null || fields.tokensPerMinute() == null) {
                throw bad("A new plan needs monthly_credit_usd (or monthly_credit_nano_usd), requests_per_minute and tokens_per_minute.", null);
            }
            plans.insert(planId, fields);
        }
        // Every user of the plan whose credit comes from it (no override) may have a new effective credit.
        queries.usersOfPlan(planId).forEach(changes::creditMayHaveChanged);
        if (fields.allowedModels().present()) {
            authenticator.invalidateAll(); // the allow-list comes with the key (ADR 0077): at once on this edge
        }
        JsonBody.write(ctx, exists ? 200 : 201, planJson(planId));
    }

    /** The body's fields, checked; null where not given. */
    static PlanFields fields(JsonNode b) {
        Long credit = JsonBody.money(b, "monthly_credit").value();
        Long rpm = JsonBody.positiveLong(b, "requests_per_minute").value();
        Long tpm = JsonBody.positiveLong(b, "tokens_per_minute").value();
        Long soft = JsonBody.positiveLong(b, "soft_limit_percent").value();
        if (soft != null && soft > 100) {
            throw bad("'soft_limit_percent' must be between 1 and 100.", "soft_limit_percent");
        }
        if (rpm != null && rpm > Integer.MAX_VALUE) {
            throw bad("'requests_per_minute' is too large.", "requests_per_minute");
        }
        String name = b.hasNonNull("display_name") ? b.get("display_name").asText() : null;
        return new PlanFields(name, credit, rpm == null ? null : rpm.intValue(), tpm, soft == null ? null : soft.intValue(), cache(b),
                JsonBody.modelList(b, "allowed_models"));
    }

    /** The longest response-cache TTL a plan may set (30 days, V19's check). */
    static final long MAX_CACHE_TTL_SECONDS = 2_592_000;

    /** The response-cache fields (ADR 0074/0075): ttl 1 s..30 days (null = off), any-request flag, hit price 0..100 %. */
    static PlanStore.CacheFields cache(JsonNode b) {
        JsonBody.Given<Long> ttl = JsonBody.positiveLong(b, "response_cache_ttl_seconds");
        if (ttl.value() != null && ttl.value() > MAX_CACHE_TTL_SECONDS) {
            throw bad("'response_cache_ttl_seconds' must be between 1 and " + MAX_CACHE_TTL_SECONDS + " (null turns the cache off).",
                    "response_cache_ttl_seconds");
        }
        JsonNode any = b.get("response_cache_any_request");
        if (any != null && !any.isBoolean()) {
            throw bad("'response_cache_any_request' must be true or false.", "response_cache_any_request");
        }
        JsonNode percent = b.get("cache_hit_price_percent");
        if (percent != null && !(percent.isIntegralNumber() && percent.asLong() >= 0 && percent.asLong() <= 100)) {
            throw bad("'cache_hit_price_percent' must be an integer between 0 (free) and 100 (full price).", "cache_hit_price_percent");
        }
        return new PlanStore.CacheFields(new JsonBody.Given<>(ttl.present(), ttl.value() == null ? null : ttl.value().intValue()),
                any == null ? null : any.booleanValue(), percent == null ? null : percent.intValue());
    }

    private ObjectNode planJson(String planId) {
        var r = queries.plan(planId);
        ObjectNode n = JSON.createObjectNode();
        n.put("plan_id", r.getPlanId());
        n.put("display_name", r.getDisplayName());
        n.put("monthly_credit_nano_usd", r.getMonthlyCreditNanoUsd());
        n.put("monthly_credit_usd", Money.formatUsd(r.getMonthlyCreditNanoUsd()));
        n.put("requests_per_minute", r.getRequestsPerMinute());
        n.put("tokens_per_minute", r.getTokensPerMinute());
        n.put("soft_limit_percent", r.getSoftLimitPercent());
        if (r.getResponseCacheTtlSeconds() == null) {
            n.putNull("response_cache_ttl_seconds");
        } else {
            n.put("response_cache_ttl_seconds", r.getResponseCacheTtlSeconds());
        }
        n.put("response_cache_any_request", r.getResponseCacheAnyRequest());
        n.put("cache_hit_price_percent", r.getCacheHitPricePercent());
        JsonBody.putModels(n, "allowed_models", r.getAllowedModels());
        return n;
    }
}
