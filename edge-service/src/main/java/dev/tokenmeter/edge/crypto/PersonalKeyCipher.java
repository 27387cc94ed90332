package dev.tokenmeter.edge.crypto;

import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;

/**
 * Encrypts users' own provider keys at rest with AES-256-GCM under a master key from config.
 *
 * <p>A fresh 96-bit nonce per encryption; the user id and provider are bound in as additional
 * authenticated data, so a ciphertext copied to another user's row fails to decrypt. The master key
 * id is stored beside each ciphertext so master keys can be rotated. Neither the plaintext nor the
 * master key ever appears in {@link #toString()} or an exception message.
 */
public final class PersonalKeyCipher {

    private static final int NONCE_BYTES = 12;
    private static final int TAG_BITS = 128;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String masterKeyId;
    private final SecretKeySpec masterKey;

    public record Sealed(byte[] ciphertext, byte[] nonce, String masterKeyId) {
    }

    /**
     * @param masterKeyId     a name for the key (stored with each ciphertext)
     * @param masterKeyBase64 32 random bytes, base64 (e.g. {@code openssl rand -base64 32})
     */
    public PersonalKeyCipher(String masterKeyId, String masterKeyBase64) {
        byte[] key;
        try {
            key = Base64.getDecoder().decode(masterKeyBase64.strip());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("master key is not valid base64");
        }
        if (key.length != 32) {
            throw new IllegalArgumentException("master key must be 32 bytes (AES-256), got " + key.length);
        }
        this.masterKeyId = masterKeyId;
        this.masterKey = new SecretKeySpec(key, "AES");
        Arrays.fill(key, (byte) 0);
    }

    public Sealed seal(String userId, String provider, String plaintextKey) {
        byte[] nonce = new byte[NONCE_BYTES];
        RANDOM.nextBytes(nonce);
        try {
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.ENCRYPT_MODE, masterKey, new GCMParameterSpec(TAG_BITS, nonce));
            cipher.updateAAD(aad(userId, provider));
            return new Sealed(cipher.doFinal(plaintextKey.getBytes(StandardCharsets.UTF_8)), nonce, masterKeyId);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("encryption failed: " + e.getClass().getSimpleName());
        }
    }

    public String open(String userId, String provider, Sealed sealed) {
        if (!masterKeyId.equals(sealed.masterKeyId())) {
            throw new IllegalStateException("personal key was sealed under master key '" + sealed.masterKeyId()
                    + "', this edge has '" + masterKeyId + "'");
        }
        try {
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.DECRYPT_MODE, masterKey, new GCMParameterSpec(TAG_BITS, sealed.nonce()));
            cipher.updateAAD(aad(userId, provider));
            return new String(cipher.doFinal(sealed.ciphertext()), StandardCharsets.UTF_8);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("personal key for user " + userId + " cannot be decrypted ("
                    + e.getClass().getSimpleName() + ")");
        }
    }

    public String masterKeyId() {
        return masterKeyId;
    }

    private static byte[] aad(String userId, String provider) {
        return (userId + "\u0000" + provider).getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        return "PersonalKeyCipher[masterKeyId=" + masterKeyId + "]";
    }
}
