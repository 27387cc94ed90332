package dev.tokenmeter.edge.quota;

/**
 * Argument bounds, checked in Java before any script runs. Lua numbers are doubles, exact only below
 * 2^53 (about 9.007e15 nano-USD = $9,007,199): one call may cost at most $100,000
 * ({@link #MAX_CALL_NANO_USD} = 1e14) and a monthly credit at most $1,000,000 ({@link #MAX_CREDIT_NANO_USD}
 * = 1e15), so a month's settled usage plus open reservations stays far below 2^53.
 */
public final class QuotaLimits {

    public static final long MAX_CALL_NANO_USD = 100_000_000_000_000L;
    public static final long MAX_CREDIT_NANO_USD = 1_000_000_000_000_000L;
    public static final long MAX_CALL_TOKENS = 100_000_000L;
    /** User and API key ids end up in Redis key names: no braces (hash tags), bounded length. */
    private static final int MAX_ID_LENGTH = 128;

    private QuotaLimits() {}

    public static String id(String name, String value) {
        if (!isId(value)) {
            throw new IllegalArgumentException(name + " must be 1-128 characters of [A-Za-z0-9._:@+-]"
                    + (value == null ? ", was null" : ", was '" + value.replaceAll("[^ -~]", "?").substring(0, Math.min(value.length(), 40)) + "'"));
        }
        return value;
    }

    /** {@code [A-Za-z0-9._:@+-]{1,128}}, as a loop: this runs on every call (a regex matcher was 1 % of the edge's CPU). */
    private static boolean isId(String value) {
        if (value == null || value.isEmpty() || value.length() > MAX_ID_LENGTH) {
            return false;
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '.' || c == '_' || c == ':' || c == '@' || c == '+' || c == '-';
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    public static long amount(String name, long nanoUsd) {
        if (nanoUsd < 0 || nanoUsd > MAX_CALL_NANO_USD) {
            throw new IllegalArgumentException(name + " must be between 0 and " + MAX_CALL_NANO_USD
                    + " nano-USD ($100,000), was " + nanoUsd);
        }
        return nanoUsd;
    }

    public static long tokens(String name, long tokens) {
        if (tokens < 0 || tokens > MAX_CALL_TOKENS) {
            throw new IllegalArgumentException(name + " must be between 0 and " + MAX_CALL_TOKENS + ", was " + tokens);
        }
        return tokens;
    }

    static long credit(String userId, long nanoUsd) {
        if (nanoUsd < 0 || nanoUsd > MAX_CREDIT_NANO_USD) {
            throw new IllegalStateException("monthly credit of user " + userId + " must be between 0 and "
                    + MAX_CREDIT_NANO_USD + " nano-USD, was " + nanoUsd);
        }
        return nanoUsd;
    }
}
