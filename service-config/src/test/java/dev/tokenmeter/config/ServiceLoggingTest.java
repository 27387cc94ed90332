package dev.tokenmeter.config;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Issue 13: LOG_LEVEL and LOG_FORMAT values the packaged Logback configuration would misread stop start-up. */
class ServiceLoggingTest {

    @Test
    void levelsInAnyCaseFormatsAndBlanksAreAccepted() {
        assertThatCode(() -> ServiceLogging.check(Map.of())).doesNotThrowAnyException();
        assertThatCode(() -> ServiceLogging.check(Map.of("LOG_LEVEL", "debug", "LOG_FORMAT", "json"))).doesNotThrowAnyException();
        assertThatCode(() -> ServiceLogging.check(Map.of("LOG_LEVEL", " ", "LOG_FORMAT", ""))).doesNotThrowAnyException();
        assertThatCode(() -> ServiceLogging.check(Map.of("LOG_LEVEL", "TRACE", "LOG_FORMAT", "plain"))).doesNotThrowAnyException();
    }

    @Test
    void anUnknownLevelOrFormatNamesTheKey() {
        // Logback would read "verbose" as DEBUG and "logfmt" as plain without a word.
        assertThatThrownBy(() -> ServiceLogging.check(Map.of("LOG_LEVEL", "verbose")))
                .hasMessage("LOG_LEVEL must be one of TRACE, DEBUG, INFO, WARN, ERROR, OFF, got 'verbose'");
        assertThatThrownBy(() -> ServiceLogging.check(Map.of("LOG_FORMAT", "logfmt")))
                .hasMessage("LOG_FORMAT must be one of plain, json, got 'logfmt'");
    }
}
