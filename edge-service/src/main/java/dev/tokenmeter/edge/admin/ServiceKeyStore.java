package dev.tokenmeter.edge.admin;

import dev.tokenmeter.edge.auth.ApiKeys;
import org.jooq.DSLContext;
import org.jooq.Field;

import java.time.OffsetDateTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.tokenmeter.db.jooq.Tables.API_KEY;

/** Writes of table {@code api_key}: a service key is stored as prefix, salt and hash, never the key itself. */
final class ServiceKeyStore {

    private final DSLContext db;

    ServiceKeyStore(DSLContext db) {
        this.db = db;
    }

    void insert(String apiKeyId, String userId, ApiKeys.IssuedKey issued) {
        db.insertInto(API_KEY).set(API_KEY.API_KEY_ID, apiKeyId).set(API_KEY.USER_ID, userId)
                .set(API_KEY.KEY_PREFIX, issued.prefix()).set(API_KEY.SALT, issued.salt()).set(API_KEY.KEY_HASH, issued.hash())
                .execute();
    }

    /**
     * Sets the key's limits that are given (ADR 0077, 0081): its model allow-list, its expiry and its monthly budget
     * (a given null clears any), and its own response cache setting (ADR 0074; null = the plan decides); false when
     * the user has no such key.
     */
    boolean limits(String userId, String apiKeyId, JsonBody.Given<List<String>> models, JsonBody.Given<OffsetDateTime> expiresAt,
                   JsonBody.Given<Long> monthlyBudgetNanoUsd, JsonBody.Given<String> responseCache) {
        // Only the columns given: the edge's role may update no other column of api_key (V12, V20).
        Map<Field<?>, Object> set = new HashMap<>();
        if (models.present()) {
            set.put(API_KEY.ALLOWED_MODELS, JsonBody.modelArray(models.value()));
        }
        if (expiresAt.present()) {
            set.put(API_KEY.EXPIRES_AT, expiresAt.value());
        }
        if (monthlyBudgetNanoUsd.present()) {
            set.put(API_KEY.MONTHLY_BUDGET_NANO_USD, monthlyBudgetNanoUsd.value());
        }
        if (responseCache.present()) {
            set.put(API_KEY.RESPONSE_CACHE, responseCache.value());
        }
        var ofUser = API_KEY.API_KEY_ID.eq(apiKeyId).and(API_KEY.USER_ID.eq(userId));
        return set.isEmpty() ? db.fetchExists(API_KEY, ofUser) : db.update(API_KEY).set(set).where(ofUser).execute() > 0;
    }

    /** Sets the project of the user's key (null = none, ADR 0078); false when the user has no such key. */
    boolean project(String userId, String apiKeyId, String project) {
        return db.update(API_KEY).set(API_KEY.PROJECT, project)
                .where(API_KEY.API_KEY_ID.eq(apiKeyId)).and(API_KEY.USER_ID.eq(userId))
                .execute() > 0;
    }

    /** Marks the user's key revoked; false when there was no such key not yet revoked. */
    boolean revoke(String userId, String apiKeyId, OffsetDateTime now) {
        return db.update(API_KEY).set(API_KEY.REVOKED_AT, now)
                .where(API_KEY.API_KEY_ID.eq(apiKeyId)).and(API_KEY.USER_ID.eq(userId)).and(API_KEY.REVOKED_AT.isNull())
                .execute() > 0;
    }
}
