package dev.tokenmeter.events.log;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** Issue 14: caller strings in log lines cannot forge lines, escapes or look-alikes, and cannot flood a log. */
class LogSafeTest {

    @Test
    void plainTextIsQuotedAsIs() {
        assertThat(LogSafe.of("gpt-4o-mini")).isEqualTo("'gpt-4o-mini'");
        assertThat(LogSafe.of(null)).isEqualTo("null");
        assertThat(LogSafe.of("")).isEqualTo("''");
    }

    @Test
    void controlCharactersQuotesBackslashesAndNonAsciiAreEscaped() {
        String forged = "m\nINFO fake line\r\u0000\u001b[31m\u2028é'\\";
        String safe = LogSafe.of(forged, 100);
        assertThat(safe).doesNotContain("\n", "\r", "\u0000", "\u001b", "\u2028", "é");
        assertThat(safe).isEqualTo("'m\\u000aINFO fake line\\u000d\\u0000\\u001b[31m\\u2028\\u00e9\\u0027\\u005c'");
    }

    @Test
    void longStringsAreCutAndTheirLengthNamed() {
        String huge = "m".repeat(1_500_000);
        String safe = LogSafe.of(huge);
        assertThat(safe).isEqualTo("'" + "m".repeat(LogSafe.DEFAULT_MAX_CHARS) + "'...(1500000 chars)");
    }
}
