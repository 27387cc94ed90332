package dev.tokenmeter.events.log;

/**
 * A caller's string made safe for a log line or an error message: quoted, control characters, backslash, quote and
 * every non-ASCII character escaped as {@code \\uXXXX} (so no caller can forge a line break, a terminal escape or a
 * look-alike character in our logs), and cut to a maximum length with the original length appended.
 */
public final class LogSafe {

    /** The default cut for log lines. */
    public static final int DEFAULT_MAX_CHARS = 64;

    private LogSafe() {
    }

    public static String of(String s) {
        return of(s, DEFAULT_MAX_CHARS);
    }

    public static String of(String s, int maxChars) {
        if (s == null) {
            return "null";
        }
        int n = Math.min(s.length(), Math.max(0, maxChars));
        StringBuilder sb = new StringBuilder(n + 24).append('\'');
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c >= 0x7f || c == '\\' || c == '\'') {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        sb.append('\'');
        if (s.length() > n) {
            sb.append("...(").append(s.length()).append(" chars)");
        }
        return sb.toString();
    }
}
