package dev.tokenmeter.config;

import java.util.regex.Pattern;

/**
 * Hides credentials inside connection strings before they are printed: the user-info password of a URL
 * ({@code redis://user:pw@host}, {@code redis://:pw@host}, and Lettuce's password-only {@code redis://pw@host})
 * and the value of query or property parameters that name a secret ({@code jdbc:…?password=…},
 * {@code …&sslpassword=…}, {@code …;token=…}). Everything else (scheme, hosts, ports, database, other
 * parameters) stays readable, so a log line still says where a service connects.
 */
public final class Redact {

    /** What a hidden value is replaced with. */
    public static final String MASK = "***";

    // scheme://user:password@ or scheme://password@ (several hosts, as in a sentinel or cluster URL, each get theirs).
    private static final Pattern USER_INFO = Pattern.compile("(?i)([a-z][a-z0-9+.\\-]*://|,)([^:/@?#\\s,]*)(:[^/@?#\\s]*)?@");
    private static final Pattern SECRET_PARAM = Pattern.compile(
            "(?i)([?&;]\\s*[a-z0-9_.\\-]*(?:password|passwd|pwd|secret|token|credential)[a-z0-9_.\\-]*\\s*=)[^&;#\\s]*");

    private Redact() {
    }

    /** {@code url} with every credential in it replaced by {@value #MASK}; {@code null} stays {@code null}. */
    public static String url(String url) {
        if (url == null) {
            return null;
        }
        String s = USER_INFO.matcher(url).replaceAll(m -> {
            String prefix = java.util.regex.Matcher.quoteReplacement(m.group(1));
            if (m.group(3) == null) {
                // One part only: Lettuce reads redis://secret@host as the password.
                return m.group(2).isEmpty() ? m.group() : prefix + MASK + "@";
            }
            return prefix + java.util.regex.Matcher.quoteReplacement(m.group(2)) + ":" + MASK + "@";
        });
        return SECRET_PARAM.matcher(s).replaceAll("$1" + MASK);
    }
}
