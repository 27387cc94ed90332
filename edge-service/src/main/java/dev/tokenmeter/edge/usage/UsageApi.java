package dev.tokenmeter.edge.usage;

import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.MonthParam;
import dev.tokenmeter.edge.http.Callers;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.admin.AdminToken;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.auth.CallerLimits;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.call.QuotaGate;
import dev.tokenmeter.edge.quota.UsageSnapshot;
import dev.tokenmeter.events.money.Money;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import org.jooq.DSLContext;

import java.time.Clock;
import java.time.Instant;
import java.time.LocalDate;
import java.time.YearMonth;
import java.util.Optional;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT_LIMITS;
import static dev.tokenmeter.db.jooq.Tables.TENANT_BUDGET;
import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;

/**
 * {@code GET /v1/usage?month=yyyy-MM}: a month's usage of one user, in two views.
 *
 * <ul>
 *   <li>{@code realtime}: what the quota engine holds now (settled + reserved spend against the credit), the number
 *   the edge decides with; null when the engine cannot say.</li>
 *   <li>{@code billed}: {@code usage_total_monthly} rows per model and key source, as the billing sink wrote them
 *   from the aggregator's totals (lags the real-time view by the pipeline's delay).</li>
 * </ul>
 *
 * <p>On the public listener ({@link #routes}) a service key sees only its own user (asking for another user is
 * 403); the admin token is not accepted there. On the admin listener ({@link #adminRoutes}) {@code GET
 * /admin/usage?user=<id>&month=yyyy-MM} with the admin token reads any user. The month defaults to the current UTC
 * month.
 *
 * <p>With {@code start_time} both routes answer the OpenAI Usage API's shape instead ({@link UsageQuery} for the
 * parameters and their bounds, {@link UsageReport} for the page, ADR 0079): the service key its own user, the admin
 * token a user ({@code user_id}), a tenant ({@code tenant_id}) or everyone.
 */
public final class UsageApi {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Authenticator authenticator;
    private final AdminToken adminToken;
    private final QuotaGate quota;
    private final DSLContext db;
    private final Clock clock;

    /** @param adminToken null when the admin API is disabled */
    public UsageApi(Authenticator authenticator, AdminToken adminToken, QuotaGate quota, DSLContext db, Clock clock) {
        this.authenticator = authenticator;
        this.adminToken = adminToken;
        this.quota = quota;
        this.db = db;
        this.clock = clock;
    }

    /** The public listener's route: a service key's own usage. */
    public void routes(RoutesConfig r) {
        r.get("/v1/usage", this::handle);
    }

    /** The admin listener's route: any user's usage, with the admin token; absent when the admin API is off. */
    public void adminRoutes(RoutesConfig r) {
        if (adminToken != null) {
            r.get("/admin/usage", this::handleAdmin);
        }
    }

    private void handleAdmin(Context ctx) {
        if (!adminToken.matches(ctx.header("Authorization"))) {
            HttpErrors.respond(ctx, OpenAiError.invalidApiKey("The admin API needs 'Authorization: Bearer <ADMIN_TOKEN>'."));
            return;
        }
        if (UsageQuery.requested(ctx.queryParamMap())) {
            query(ctx, true, null);
            return;
        }
        String requestedUser = ctx.queryParam("user");
        if (requestedUser == null || requestedUser.isBlank()) {
            HttpErrors.respond(ctx, OpenAiError.invalidRequest("With the admin token, pass user=<user id>.", "user"));
            return;
        }
        respond(ctx, requestedUser);
    }

    private void handle(Context ctx) {
        String requestedUser = ctx.queryParam("user");
        Optional<Caller> caller = Callers.active(ctx, authenticator);
        if (caller.isEmpty()) {
            return;
        }
        if (UsageQuery.requested(ctx.queryParamMap())) {
            query(ctx, false, caller.get().userId());
            return;
        }
        if (requestedUser != null && !requestedUser.equals(caller.get().userId())) {
            HttpErrors.respond(ctx, new OpenAiError(403, "A service key can read only its own user's usage.",
                    "invalid_request_error", "user", "forbidden", false, null));
            return;
        }
        respond(ctx, caller.get().userId(), caller.get());
    }

    /** The OpenAI-shaped answer (start_time given): JSON page, or CSV with {@code Accept: text/csv}. */
    private void query(Context ctx, boolean admin, String caller) {
        Instant now = clock.instant();
        UsageQuery q;
        try {
            q = UsageQuery.parse(ctx.queryParamMap(), admin, caller, now);
        } catch (UsageQuery.Forbidden e) {
            HttpErrors.respond(ctx, new OpenAiError(403, e.getMessage(), "invalid_request_error", e.param, "forbidden", false, null));
            return;
        } catch (UsageQuery.Invalid e) {
            HttpErrors.respond(ctx, OpenAiError.invalidRequest(e.getMessage(), e.param));
            return;
        }
        if (q.dimension() != null && !UsageReport.dimensionKnown(db, q.dimension())) {
            HttpErrors.respond(ctx, OpenAiError.invalidRequest("'group_by=" + q.dimension() + "' is not a rollup dimension:"
                    + " the attribution rollups hold no row for it (the aggregator's ROLLUP_DIMENSIONS names them).", "group_by"));
            return;
        }
        UsageReport.Page page = UsageReport.run(q, db, this::realtime, now);
        String accept = ctx.header("Accept");
        if (accept != null && accept.contains("text/csv")) {
            if (page.nextPage() != null) {
                ctx.header("x-next-page", page.nextPage());
            }
            ctx.status(200).contentType("text/csv; charset=utf-8; header=present").result(UsageReport.csv(page));
        } else {
            ctx.status(200).contentType("application/json").result(UsageReport.json(page));
        }
    }

    private Optional<UsageSnapshot> realtime(String userId, YearMonth month) {
        try {
            return quota.usage(userId, month);
        } catch (RuntimeException e) {
            return Optional.empty(); // an unknown user, or the engine cannot say: billed rows only
        }
    }

    private void respond(Context ctx, String userId) {
        respond(ctx, userId, null);
    }

    /** @param caller the key's caller, whose spend controls ({@link CallerLimits}, ADR 0077) are shown; null for an admin */
    private void respond(Context ctx, String userId, Caller caller) {
        YearMonth month = MonthParam.parseOrRespond(ctx, clock);
        if (month == null) {
            return;
        }
        ObjectNode n = JSON.createObjectNode();
        n.put("user_id", userId);
        n.put("month", month.toString());
        var limits = db.selectFrom(ACCOUNT_LIMITS).where(ACCOUNT_LIMITS.USER_ID.eq(userId)).fetchOne();
        if (limits == null) {
            HttpErrors.respond(ctx, new OpenAiError(404, "No user '" + userId + "'.", "invalid_request_error",
                    "user", "not_found", false, null));
            return;
        }
        n.put("monthly_credit_nano_usd", limits.getMonthlyCreditNanoUsd());
        n.put("monthly_credit_usd", Money.formatUsd(limits.getMonthlyCreditNanoUsd()));
        if (caller != null) {
            Long tenantBudget = caller.tenantId() == null ? null : db.select(TENANT_BUDGET.MONTHLY_BUDGET_NANO_USD)
                    .from(TENANT_BUDGET).where(TENANT_BUDGET.TENANT_ID.eq(caller.tenantId()))
                    .fetchOne(TENANT_BUDGET.MONTHLY_BUDGET_NANO_USD);
            n.set("limits", CallerLimits.json(caller, quota.keySpend(userId, caller.apiKeyId(), month), tenantBudget,
                    tenantBudget == null ? java.util.OptionalLong.empty() : quota.tenantSpend(caller.tenantId(), month)));
        }

        Optional<UsageSnapshot> realtime = quota.usage(userId, month);
        if (realtime.isEmpty()) {
            n.putNull("realtime");
        } else {
            UsageSnapshot u = realtime.get();
            ObjectNode r = n.putObject("realtime");
            r.put("credit_nano_usd", u.creditNanoUsd());
            r.put("settled_nano_usd", u.settledNanoUsd());
            r.put("reserved_nano_usd", u.reservedNanoUsd());
            // Not the snapshot's remaining credit, which stops at 0: past the credit this goes below it.
            long remaining = u.creditNanoUsd() - u.settledNanoUsd() - u.reservedNanoUsd();
            r.put("remaining_nano_usd", remaining);
            r.put("settled_usd", Money.formatUsd(u.settledNanoUsd()));
            r.put("remaining_usd", Money.formatUsd(remaining));
        }

        ObjectNode billed = n.putObject("billed");
        ArrayNode rows = billed.putArray("data");
        long total = 0;
        for (var r : db.selectFrom(USAGE_TOTAL_MONTHLY)
                .where(USAGE_TOTAL_MONTHLY.USER_ID.eq(userId))
                .and(USAGE_TOTAL_MONTHLY.BILLING_MONTH.eq(LocalDate.of(month.getYear(), month.getMonth(), 1)))
                .orderBy(USAGE_TOTAL_MONTHLY.MODEL, USAGE_TOTAL_MONTHLY.KEY_SOURCE)
                .fetch()) {
            ObjectNode row = rows.addObject();
            row.put("model", r.getModel());
            row.put("key_source", r.getKeySource());
            row.put("event_count", r.getEventCount());
            row.put("prompt_tokens", r.getPromptTokens());
            row.put("cached_prompt_tokens", r.getCachedPromptTokens());
            row.put("completion_tokens", r.getCompletionTokens());
            row.put("reasoning_tokens", r.getReasoningTokens());
            row.put("cost_nano_usd", r.getCostNanoUsd());
            row.put("cost_usd", Money.formatUsd(r.getCostNanoUsd()));
            row.put("is_final", r.getIsFinal());
            total = Math.addExact(total, r.getCostNanoUsd());
        }
        billed.put("total_cost_nano_usd", total);
        billed.put("total_cost_usd", Money.formatUsd(total));
        ctx.status(200).contentType("application/json").result(n.toString());
    }
}
