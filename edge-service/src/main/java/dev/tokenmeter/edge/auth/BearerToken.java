package dev.tokenmeter.edge.auth;

/** The token of an {@code Authorization: Bearer <token>} header. */
public final class BearerToken {

    private BearerToken() {
    }

    /** The token (stripped), or null when the header is absent, not a bearer header or empty. */
    public static String from(String authorization) {
        if (authorization == null) {
            return null;
        }
        String a = authorization.strip();
        if (a.length() < 7 || !a.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return null;
        }
        String token = a.substring(7).strip();
        return token.isEmpty() ? null : token;
    }
}
