package dev.tokenmeter.edge.admin;

import dev.tokenmeter.edge.auth.ApiKeys;
import org.jooq.DSLContext;

import java.time.OffsetDateTime;

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

    /** Sets the key's model allow-list (null clears it); false when the user has no such key. */
    boolean allowedModels(String userId, String apiKeyId, String[] models) {
        return db.update(API_KEY).set(API_KEY.ALLOWED_MODELS, models)
                .where(API_KEY.API_KEY_ID.eq(apiKeyId)).and(API_KEY.USER_ID.eq(userId)).execute() > 0;
    }

    /** Marks the user's key revoked; false when there was no such key not yet revoked. */
    boolean revoke(String userId, String apiKeyId, OffsetDateTime now) {
        return db.update(API_KEY).set(API_KEY.REVOKED_AT, now)
                .where(API_KEY.API_KEY_ID.eq(apiKeyId)).and(API_KEY.USER_ID.eq(userId)).and(API_KEY.REVOKED_AT.isNull())
                .execute() > 0;
    }
}
