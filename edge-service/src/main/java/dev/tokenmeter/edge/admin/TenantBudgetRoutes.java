package dev.tokenmeter.edge.admin;

import static dev.tokenmeter.db.jooq.Tables.TENANT_BUDGET;
import static dev.tokenmeter.edge.admin.AdminError.bad;
import static dev.tokenmeter.edge.admin.AdminError.notFound;
import static dev.tokenmeter.edge.admin.JsonBody.JSON;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.db.jooq.tables.records.TenantBudgetRecord;
import dev.tokenmeter.edge.quota.QuotaLimits;
import dev.tokenmeter.events.money.Money;
import io.javalin.http.Context;
import java.time.Clock;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.function.BiConsumer;
import org.jooq.DSLContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code /admin/tenants/{tenantId}/budget} (issue 17, ADR 0081): a monthly budget every user of the tenant shares (a
 * call must fit its user's credit and its tenant's budget). PUT takes {@code monthly_budget_usd} (an exact decimal
 * string) or {@code monthly_budget_nano_usd} (an integer), 0 to $1,000,000 like a credit; GET shows it; DELETE removes
 * it. A change reaches this edge at once ({@code onChanged}: the quota engine's cached budget; when the budget is created
 * or removed, also the tenant's month spend in Redis, rebuilt from the ledger at the next call), other edges within
 * ACCOUNT_CACHE_TTL.
 */
final class TenantBudgetRoutes {

    private static final Logger LOG = LoggerFactory.getLogger(TenantBudgetRoutes.class);

    private final DSLContext db;
    private final BiConsumer<String, Boolean> onChanged;
    private final Clock clock;

    TenantBudgetRoutes(DSLContext db, BiConsumer<String, Boolean> onChanged, Clock clock) {
        this.db = db;
        this.onChanged = onChanged == null ? (t, c) -> { } : onChanged;
        this.clock = clock;
    }

    void put(Context ctx) {
        String tenantId = tenantId(ctx);
        JsonBody.Given<Long> budget = JsonBody.money(JsonBody.object(ctx), "monthly_budget");
        if (budget.value() == null) {
            throw bad("Give 'monthly_budget_usd' (a decimal string such as \"250.00\") or 'monthly_budget_nano_usd'"
                    + " (an integer); DELETE removes the budget.", "monthly_budget_usd");
        }
        if (budget.value() > QuotaLimits.MAX_CREDIT_NANO_USD) {
            throw bad("'monthly_budget' must be at most " + Money.formatUsd(QuotaLimits.MAX_CREDIT_NANO_USD) + " USD.",
                    "monthly_budget_nano_usd");
        }
        OffsetDateTime now = OffsetDateTime.ofInstant(clock.instant(), ZoneOffset.UTC);
        boolean created = !db.fetchExists(TENANT_BUDGET, TENANT_BUDGET.TENANT_ID.eq(tenantId));
        db.insertInto(TENANT_BUDGET).set(TENANT_BUDGET.TENANT_ID, tenantId)
                .set(TENANT_BUDGET.MONTHLY_BUDGET_NANO_USD, budget.value()).set(TENANT_BUDGET.UPDATED_AT, now)
                .onConflict(TENANT_BUDGET.TENANT_ID).doUpdate()
                .set(TENANT_BUDGET.MONTHLY_BUDGET_NANO_USD, budget.value()).set(TENANT_BUDGET.UPDATED_AT, now)
                .execute();
        onChanged.accept(tenantId, created);
        LOG.info("set the monthly budget of tenant {}", tenantId);
        JsonBody.write(ctx, 200, json(find(tenantId)));
    }

    void get(Context ctx) {
        JsonBody.write(ctx, 200, json(find(tenantId(ctx))));
    }

    void delete(Context ctx) {
        String tenantId = tenantId(ctx);
        if (db.deleteFrom(TENANT_BUDGET).where(TENANT_BUDGET.TENANT_ID.eq(tenantId)).execute() == 0) {
            throw notFound("Tenant '" + tenantId + "' has no monthly budget.");
        }
        onChanged.accept(tenantId, true);
        LOG.info("removed the monthly budget of tenant {}", tenantId);
        ctx.status(204);
    }

    private TenantBudgetRecord find(String tenantId) {
        TenantBudgetRecord r = db.selectFrom(TENANT_BUDGET).where(TENANT_BUDGET.TENANT_ID.eq(tenantId)).fetchOne();
        if (r == null) {
            throw notFound("Tenant '" + tenantId + "' has no monthly budget.");
        }
        return r;
    }

    /** The path's tenant id, within the quota engine's id alphabet (it names Redis keys). */
    private static String tenantId(Context ctx) {
        String t = ctx.pathParam("tenantId");
        try {
            return QuotaLimits.id("tenantId", t);
        } catch (IllegalArgumentException e) {
            throw bad(e.getMessage(), "tenantId");
        }
    }

    private static ObjectNode json(TenantBudgetRecord r) {
        ObjectNode n = JSON.createObjectNode();
        n.put("tenant_id", r.getTenantId());
        n.put("monthly_budget_nano_usd", r.getMonthlyBudgetNanoUsd());
        n.put("monthly_budget_usd", Money.formatUsd(r.getMonthlyBudgetNanoUsd()));
        n.put("updated_at", r.getUpdatedAt().toInstant().toString());
        return n;
    }
}
