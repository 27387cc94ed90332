package dev.tokenmeter.edge.admin;

import dev.tokenmeter.edge.admin.JsonBody.Given;
import org.jooq.DSLContext;

import java.time.OffsetDateTime;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;

/** Writes of table {@code account}: a user, its plan, status and per-user overrides of the plan's limits. */
final class AccountStore {

    /**
     * The overrides as a request gives them: absent keeps the stored value, present with a null value clears it
     * (the plan's value applies again).
     */
    record Overrides(Given<Long> monthlyCreditNanoUsd, Given<Integer> requestsPerMinute, Given<Long> tokensPerMinute) {
    }

    private final DSLContext db;

    AccountStore(DSLContext db) {
        this.db = db;
    }

    /** A new user; false when the user exists already (nothing changed). */
    boolean insert(String userId, String tenantId, String planId, Overrides o) {
        return db.insertInto(ACCOUNT).set(ACCOUNT.USER_ID, userId).set(ACCOUNT.TENANT_ID, tenantId)
                .set(ACCOUNT.PLAN_ID, planId).set(ACCOUNT.MONTHLY_CREDIT_OVERRIDE_NANO_USD, o.monthlyCreditNanoUsd().value())
                .set(ACCOUNT.REQUESTS_PER_MINUTE_OVERRIDE, o.requestsPerMinute().value())
                .set(ACCOUNT.TOKENS_PER_MINUTE_OVERRIDE, o.tokensPerMinute().value())
                .onConflictDoNothing().execute() > 0;
    }

    /** Sets status and plan when not null, the overrides that are present, and {@code updated_at}. */
    void update(String userId, String status, String planId, Overrides o, OffsetDateTime now) {
        var u = db.update(ACCOUNT).set(ACCOUNT.UPDATED_AT, now);
        if (status != null) {
            u = u.set(ACCOUNT.STATUS, status);
        }
        if (planId != null) {
            u = u.set(ACCOUNT.PLAN_ID, planId);
        }
        if (o.monthlyCreditNanoUsd().present()) {
            u = u.set(ACCOUNT.MONTHLY_CREDIT_OVERRIDE_NANO_USD, o.monthlyCreditNanoUsd().value());
        }
        if (o.requestsPerMinute().present()) {
            u = u.set(ACCOUNT.REQUESTS_PER_MINUTE_OVERRIDE, o.requestsPerMinute().value());
        }
        if (o.tokensPerMinute().present()) {
            u = u.set(ACCOUNT.TOKENS_PER_MINUTE_OVERRIDE, o.tokensPerMinute().value());
        }
        u.where(ACCOUNT.USER_ID.eq(userId)).execute();
    }
}
