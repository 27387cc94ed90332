package dev.tokenmeter.edge.admin;

import dev.tokenmeter.db.jooq.tables.records.AccountLimitsRecord;
import dev.tokenmeter.db.jooq.tables.records.AccountRecord;
import dev.tokenmeter.db.jooq.tables.records.ApiKeyRecord;
import dev.tokenmeter.db.jooq.tables.records.PlanRecord;
import org.jooq.DSLContext;
import org.jooq.Record3;

import java.time.OffsetDateTime;
import java.util.List;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;
import static dev.tokenmeter.db.jooq.Tables.ACCOUNT_LIMITS;
import static dev.tokenmeter.db.jooq.Tables.API_KEY;
import static dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY;
import static dev.tokenmeter.db.jooq.Tables.PLAN;

/** Every read of the admin API; the writes are in the stores ({@link PlanStore}, {@link AccountStore}, …). */
final class AdminQueries {

    private final DSLContext db;

    AdminQueries(DSLContext db) {
        this.db = db;
    }

    boolean planExists(String planId) {
        return db.fetchExists(PLAN, PLAN.PLAN_ID.eq(planId));
    }

    PlanRecord plan(String planId) {
        return db.selectFrom(PLAN).where(PLAN.PLAN_ID.eq(planId)).fetchOne();
    }

    /** The users on a plan (their credit may come from it). */
    List<String> usersOfPlan(String planId) {
        return db.select(ACCOUNT.USER_ID).from(ACCOUNT).where(ACCOUNT.PLAN_ID.eq(planId)).fetch(ACCOUNT.USER_ID);
    }

    boolean userExists(String userId) {
        return db.fetchExists(ACCOUNT, ACCOUNT.USER_ID.eq(userId));
    }

    /** The account, or null. */
    AccountRecord account(String userId) {
        return db.selectFrom(ACCOUNT).where(ACCOUNT.USER_ID.eq(userId)).fetchOne();
    }

    /** The effective limits (view {@code account_limits}: plan values unless overridden), or null. */
    AccountLimitsRecord limits(String userId) {
        return db.selectFrom(ACCOUNT_LIMITS).where(ACCOUNT_LIMITS.USER_ID.eq(userId)).fetchOne();
    }

    /** The user's service keys, oldest first (revoked ones too). */
    List<ApiKeyRecord> serviceKeys(String userId) {
        return db.selectFrom(API_KEY).where(API_KEY.USER_ID.eq(userId)).orderBy(API_KEY.CREATED_AT).fetch();
    }

    /** One of the user's service keys, or null. */
    ApiKeyRecord serviceKey(String userId, String apiKeyId) {
        return db.selectFrom(API_KEY).where(API_KEY.API_KEY_ID.eq(apiKeyId)).and(API_KEY.USER_ID.eq(userId)).fetchOne();
    }

    boolean serviceKeyExists(String userId, String apiKeyId) {
        return db.fetchExists(API_KEY, API_KEY.API_KEY_ID.eq(apiKeyId).and(API_KEY.USER_ID.eq(userId)));
    }

    /** Provider, last four characters and creation time of the user's active personal key, or null. */
    Record3<String, String, OffsetDateTime> activePersonalKey(String userId, String provider) {
        return db.select(PERSONAL_PROVIDER_KEY.PROVIDER, PERSONAL_PROVIDER_KEY.KEY_LAST4, PERSONAL_PROVIDER_KEY.CREATED_AT)
                .from(PERSONAL_PROVIDER_KEY)
                .where(PERSONAL_PROVIDER_KEY.USER_ID.eq(userId)).and(PERSONAL_PROVIDER_KEY.PROVIDER.eq(provider))
                .and(PERSONAL_PROVIDER_KEY.REVOKED_AT.isNull()).fetchOne();
    }
}
