package dev.tokenmeter.testkit;

import java.security.SecureRandom;
import java.util.Locale;

/** Unique names for per-test topics and databases. */
public final class Names {

    private static final char[] ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789".toCharArray();
    private static final int SUFFIX_LENGTH = 8;
    /** Postgres truncates identifiers at 63 bytes; keep the whole name well inside that. */
    private static final int MAX_PREFIX_LENGTH = 40;
    private static final SecureRandom RANDOM = new SecureRandom();

    private Names() {
    }

    /**
     * prefix + "-" + short random suffix, safe for topics, databases ([a-z0-9_-]). The prefix is lower-cased,
     * any other character becomes '_', and it is cut to 40 characters.
     */
    public static String unique(String prefix) {
        if (prefix == null || prefix.isBlank()) {
            throw new IllegalArgumentException("a name prefix is required (e.g. the test's name)");
        }
        String clean = prefix.strip().toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9_-]", "_");
        if (clean.length() > MAX_PREFIX_LENGTH) {
            clean = clean.substring(0, MAX_PREFIX_LENGTH);
        }
        StringBuilder name = new StringBuilder(clean.length() + 1 + SUFFIX_LENGTH).append(clean).append('-');
        for (int i = 0; i < SUFFIX_LENGTH; i++) {
            name.append(ALPHABET[RANDOM.nextInt(ALPHABET.length)]);
        }
        return name.toString();
    }
}
