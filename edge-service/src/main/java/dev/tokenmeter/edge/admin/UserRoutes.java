package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.admin.AccountStore.Overrides;
import dev.tokenmeter.edge.admin.JsonBody.Given;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.events.money.Money;
import io.javalin.http.Context;

import java.time.Clock;
import java.time.OffsetDateTime;

import static dev.tokenmeter.edge.admin.AdminError.bad;
import static dev.tokenmeter.edge.admin.AdminError.conflict;
import static dev.tokenmeter.edge.admin.AdminError.notFound;
import static dev.tokenmeter.edge.admin.JsonBody.JSON;

/**
 * {@code POST /admin/users}, {@code GET} and {@code PATCH /admin/users/{userId}}: a user's account (tenant, plan,
 * status, overrides) and its effective limits. Every change publishes the user's effective credit.
 */
final class UserRoutes {

    private final AdminQueries queries;
    private final AccountStore accounts;
    private final AccountChanges changes;
    private final Authenticator authenticator;
    private final Clock clock;

    UserRoutes(AdminQueries queries, AccountStore accounts, AccountChanges changes, Authenticator authenticator, Clock clock) {
        this.queries = queries;
        this.accounts = accounts;
        this.changes = changes;
        this.authenticator = authenticator;
        this.clock = clock;
    }

    void create(Context ctx) {
        JsonNode b = JsonBody.object(ctx);
        String userId = JsonBody.requiredText(b, "user_id");
        String tenantId = JsonBody.requiredText(b, "tenant_id");
        String planId = JsonBody.requiredText(b, "plan_id");
        requirePlan(planId);
        if (!accounts.insert(userId, tenantId, planId, overrides(b))) {
            throw conflict("User '" + userId + "' exists already.");
        }
        changes.creditMayHaveChanged(userId);
        JsonBody.write(ctx, 201, userJson(userId));
    }

    void get(Context ctx) {
        JsonBody.write(ctx, 200, userJson(ctx.pathParam("userId")));
    }

    void patch(Context ctx) {
        String userId = ctx.pathParam("userId");
        requireUser(queries, userId);
        JsonNode b = JsonBody.object(ctx);
        String status = null;
        if (b.has("status")) {
            status = b.get("status").asText("");
            if (!status.equals("ACTIVE") && !status.equals("DISABLED")) {
                throw bad("'status' must be ACTIVE or DISABLED.", "status");
            }
        }
        String planId = null;
        if (b.hasNonNull("plan_id")) {
            planId = b.get("plan_id").asText();
            requirePlan(planId);
        }
        accounts.update(userId, status, planId, overrides(b), OffsetDateTime.now(clock));
        if (status != null) {
            // Cached key lookups carry the account's status: this edge refuses a disabled account's keys at once.
            authenticator.invalidateAll();
        }
        changes.creditMayHaveChanged(userId);
        JsonBody.write(ctx, 200, userJson(userId));
    }

    /** The overrides of the body; an absent one is kept, a null one cleared. */
    static Overrides overrides(JsonNode b) {
        Given<Long> credit = JsonBody.money(b, "monthly_credit_override");
        Given<Long> rpm = JsonBody.positiveLong(b, "requests_per_minute_override");
        Given<Long> tpm = JsonBody.positiveLong(b, "tokens_per_minute_override");
        if (rpm.value() != null && rpm.value() > Integer.MAX_VALUE) {
            // The column is an int: refused like the plan's requests_per_minute, never wrapped by intValue().
            throw bad("'requests_per_minute_override' is too large.", "requests_per_minute_override");
        }
        return new Overrides(credit, new Given<>(rpm.present(), rpm.value() == null ? null : rpm.value().intValue()), tpm);
    }

    static void requireUser(AdminQueries queries, String userId) {
        if (!queries.userExists(userId)) {
            throw notFound("No user '" + userId + "'.");
        }
    }

    private void requirePlan(String planId) {
        if (!queries.planExists(planId)) {
            throw bad("Plan '" + planId + "' does not exist.", "plan_id");
        }
    }

    private ObjectNode userJson(String userId) {
        var a = queries.account(userId);
        if (a == null) {
            throw notFound("No user '" + userId + "'.");
        }
        var l = queries.limits(userId);
        ObjectNode n = JSON.createObjectNode();
        n.put("user_id", a.getUserId());
        n.put("tenant_id", a.getTenantId());
        n.put("plan_id", a.getPlanId());
        n.put("status", a.getStatus());
        ObjectNode o = n.putObject("overrides");
        JsonBody.putNullable(o, "monthly_credit_nano_usd", a.getMonthlyCreditOverrideNanoUsd());
        JsonBody.putNullable(o, "requests_per_minute", a.getRequestsPerMinuteOverride() == null ? null : a.getRequestsPerMinuteOverride().longValue());
        JsonBody.putNullable(o, "tokens_per_minute", a.getTokensPerMinuteOverride());
        ObjectNode e = n.putObject("effective");
        e.put("monthly_credit_nano_usd", l.getMonthlyCreditNanoUsd());
        e.put("monthly_credit_usd", Money.formatUsd(l.getMonthlyCreditNanoUsd()));
        e.put("requests_per_minute", l.getRequestsPerMinute());
        e.put("tokens_per_minute", l.getTokensPerMinute());
        return n;
    }
}
