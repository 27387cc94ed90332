package dev.tokenmeter.edge.admin;

import dev.tokenmeter.edge.crypto.PersonalKeyCipher;
import org.jooq.DSLContext;

import java.time.OffsetDateTime;

import static dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY;

/** Writes of table {@code personal_provider_key}: a user's own provider key, sealed, one per user and provider. */
final class PersonalKeyStore {

    private final DSLContext db;

    PersonalKeyStore(DSLContext db) {
        this.db = db;
    }

    /** Registers the sealed key, replacing (and un-revoking) the user's previous one for the provider. */
    void upsert(String userId, String provider, PersonalKeyCipher.Sealed sealed, String last4, OffsetDateTime now) {
        db.insertInto(PERSONAL_PROVIDER_KEY).set(PERSONAL_PROVIDER_KEY.USER_ID, userId)
                .set(PERSONAL_PROVIDER_KEY.PROVIDER, provider)
                .set(PERSONAL_PROVIDER_KEY.KEY_CIPHERTEXT, sealed.ciphertext()).set(PERSONAL_PROVIDER_KEY.KEY_NONCE, sealed.nonce())
                .set(PERSONAL_PROVIDER_KEY.MASTER_KEY_ID, sealed.masterKeyId()).set(PERSONAL_PROVIDER_KEY.KEY_LAST4, last4)
                .onConflict(PERSONAL_PROVIDER_KEY.USER_ID, PERSONAL_PROVIDER_KEY.PROVIDER).doUpdate()
                .set(PERSONAL_PROVIDER_KEY.KEY_CIPHERTEXT, sealed.ciphertext()).set(PERSONAL_PROVIDER_KEY.KEY_NONCE, sealed.nonce())
                .set(PERSONAL_PROVIDER_KEY.MASTER_KEY_ID, sealed.masterKeyId()).set(PERSONAL_PROVIDER_KEY.KEY_LAST4, last4)
                .set(PERSONAL_PROVIDER_KEY.CREATED_AT, now)
                .setNull(PERSONAL_PROVIDER_KEY.REVOKED_AT)
                .execute();
    }

    /** False when the user had no key for the provider. */
    boolean delete(String userId, String provider) {
        return db.deleteFrom(PERSONAL_PROVIDER_KEY).where(PERSONAL_PROVIDER_KEY.USER_ID.eq(userId))
                .and(PERSONAL_PROVIDER_KEY.PROVIDER.eq(provider)).execute() > 0;
    }
}
