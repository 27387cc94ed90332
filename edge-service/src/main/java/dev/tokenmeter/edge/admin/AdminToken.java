package dev.tokenmeter.edge.admin;


import dev.tokenmeter.edge.auth.BearerToken;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/**
 * The admin API's bearer token (config {@code ADMIN_TOKEN}). Compared in constant time over SHA-256 digests, so
 * neither the content nor the length of the configured token leaks through response timing.
 */
public final class AdminToken {

    private final byte[] digest;

    public AdminToken(String token) {
        if (token == null || token.isBlank()) {
            throw new IllegalArgumentException("ADMIN_TOKEN must not be empty when the admin API is enabled");
        }
        this.digest = sha256(token);
    }

    /** True when the {@code Authorization} header carries exactly the admin token. */
    public boolean matches(String authorizationHeader) {
        String presented = BearerToken.from(authorizationHeader);
        return presented != null && MessageDigest.isEqual(sha256(presented), digest);
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public String toString() {
        return "AdminToken[<redacted>]";
    }
}
