package dev.tokenmeter.edge.proxy;

import dev.tokenmeter.edge.crypto.PersonalKeyCipher;
import org.jooq.DSLContext;

import java.util.Optional;

import static dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY;

/**
 * The OpenAI key a call goes out with: the service's own key for SERVICE_CREDIT calls, or the user's own key from
 * {@code personal_provider_key} (AES-GCM sealed, opened with {@link PersonalKeyCipher}) for PERSONAL_KEY calls.
 * Decrypted keys live only for the call; neither kind is ever logged or put in an exception message.
 */
public final class UpstreamKeys {

    public static final String PROVIDER = "openai";

    private final String serviceKey;
    private final DSLContext db;
    private final PersonalKeyCipher cipher;

    /**
     * @param db     null, or cipher null, disables personal keys
     */
    public UpstreamKeys(String serviceKey, DSLContext db, PersonalKeyCipher cipher) {
        this.serviceKey = serviceKey;
        this.db = db;
        this.cipher = cipher;
    }

    public String serviceKey() {
        return serviceKey;
    }

    /** Whether the user has an own, unrevoked key that calls could go out with (false when personal keys are disabled). */
    public boolean hasPersonalKey(String userId) {
        return db != null && cipher != null && db.fetchExists(PERSONAL_PROVIDER_KEY,
                PERSONAL_PROVIDER_KEY.USER_ID.eq(userId).and(PERSONAL_PROVIDER_KEY.PROVIDER.eq(PROVIDER))
                        .and(PERSONAL_PROVIDER_KEY.REVOKED_AT.isNull()));
    }

    /** The user's own key, or empty when they have none (or it was revoked, or personal keys are disabled). */
    public Optional<String> personalKey(String userId) {
        if (db == null || cipher == null) {
            return Optional.empty();
        }
        var r = db.selectFrom(PERSONAL_PROVIDER_KEY)
                .where(PERSONAL_PROVIDER_KEY.USER_ID.eq(userId))
                .and(PERSONAL_PROVIDER_KEY.PROVIDER.eq(PROVIDER))
                .and(PERSONAL_PROVIDER_KEY.REVOKED_AT.isNull())
                .fetchOne();
        if (r == null) {
            return Optional.empty();
        }
        return Optional.of(cipher.open(userId, PROVIDER,
                new PersonalKeyCipher.Sealed(r.getKeyCiphertext(), r.getKeyNonce(), r.getMasterKeyId())));
    }

    @Override
    public String toString() {
        return "UpstreamKeys[serviceKey=<redacted>, personalKeys=" + (cipher != null) + "]";
    }
}
