package dev.tokenmeter.edge.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;

/**
 * Service API keys: {@code tm_<12-char prefix>_<32-char secret>}. The whole key is shown once, when it is
 * issued; the database keeps only the prefix (to find the row and for humans), a random salt and
 * SHA-256(salt || key). Keys are 190+ bits of randomness, so a fast hash is enough (no password
 * stretching needed); comparison is constant-time.
 */
public final class ApiKeys {

    public static final String SCHEME = "tm_";
    private static final int PREFIX_CHARS = 12;
    private static final int SECRET_CHARS = 32;
    private static final char[] ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789".toCharArray();
    private static final SecureRandom RANDOM = new SecureRandom();

    private ApiKeys() {
    }

    /** A newly issued key: the secret to show once, and what to store. */
    public record IssuedKey(String key, String prefix, byte[] salt, byte[] hash) {
        @Override
        public String toString() {
            return "IssuedKey[prefix=" + prefix + ", key=<redacted>]";
        }
    }

    public static IssuedKey issue() {
        String prefix = random(PREFIX_CHARS);
        String key = SCHEME + prefix + "_" + random(SECRET_CHARS);
        byte[] salt = new byte[16];
        RANDOM.nextBytes(salt);
        return new IssuedKey(key, prefix, salt, hash(salt, key));
    }

    /** The prefix of a presented key, or null if it is not shaped like one of ours. */
    public static String prefixOf(String key) {
        if (key == null || !key.startsWith(SCHEME) || key.length() != SCHEME.length() + PREFIX_CHARS + 1 + SECRET_CHARS
                || key.charAt(SCHEME.length() + PREFIX_CHARS) != '_') {
            return null;
        }
        return key.substring(SCHEME.length(), SCHEME.length() + PREFIX_CHARS);
    }

    public static byte[] hash(byte[] salt, String key) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(salt);
            sha.update(key.getBytes(StandardCharsets.UTF_8));
            return sha.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Constant-time check of a presented key against the stored salt and hash. */
    public static boolean matches(String presentedKey, byte[] salt, byte[] storedHash) {
        return MessageDigest.isEqual(hash(salt, presentedKey), storedHash);
    }

    /** Redacts anything that looks like a key, for log lines and error messages. */
    public static String redact(String key) {
        String prefix = prefixOf(key);
        return prefix == null ? "<redacted>" : SCHEME + prefix + "_…";
    }

    private static String random(int chars) {
        StringBuilder sb = new StringBuilder(chars);
        for (int i = 0; i < chars; i++) {
            sb.append(ALPHABET[RANDOM.nextInt(ALPHABET.length)]);
        }
        return sb.toString();
    }

    static String base64(byte[] bytes) {
        return Base64.getEncoder().encodeToString(bytes);
    }
}
