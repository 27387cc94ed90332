package dev.tokenmeter.config;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class EnvReaderTest {

    enum Policy { FAIL_OPEN, FAIL_CLOSED }

    private static final List<ConfigKey> KEYS = List.of(
            new ConfigKey("HOST", "127.0.0.1", "Interface to bind."),
            new ConfigKey("PREFIX", "", "Prefix of every name."),
            new ConfigKey("PORT", "8080", "HTTP port."),
            new ConfigKey("MAX_BYTES", "4096", "Largest body."),
            new ConfigKey("TIMEOUT", "5s", "Upstream timeout."),
            new ConfigKey("RETENTION", "7d", "How long ids are kept."),
            new ConfigKey("INTERVAL", "1s", "How often."),
            new ConfigKey("TTL_MS", "600000", "Reservation lifetime."),
            new ConfigKey("GUARANTEE", "exactly_once_v2", "Processing guarantee."),
            new ConfigKey("POLICY", "FAIL_CLOSED", "Failure policy."),
            new ConfigKey("INSTANCE_ID", "", "Instance id; default the host name."),
            ConfigKey.secret("PASSWORD", "", "Database password."));

    private static EnvReader reader(Map<String, String> env) {
        return new EnvReader(env, KEYS);
    }

    private static EnvReader reader(String name, String value) {
        return reader(Map.of(name, value));
    }

    @Test
    void absentKeysReadTheirDefaults() {
        EnvReader r = reader(Map.of());
        assertThat(r.string("HOST")).isEqualTo("127.0.0.1");
        assertThat(r.string("PREFIX")).isEmpty();
        assertThat(r.integer("PORT", 0, 65535)).isEqualTo(8080);
        assertThat(r.longValue("MAX_BYTES", 1, Long.MAX_VALUE)).isEqualTo(4096L);
        assertThat(r.duration("TIMEOUT")).isEqualTo(Duration.ofSeconds(5));
        assertThat(r.millis("TTL_MS")).isEqualTo(Duration.ofMinutes(10));
        assertThat(r.oneOf("GUARANTEE", "exactly_once_v2", "at_least_once")).isEqualTo("exactly_once_v2");
        assertThat(r.enumValue("POLICY", Policy.class)).isEqualTo(Policy.FAIL_CLOSED);
    }

    @Test
    void blankMeansTheDefaultAndValuesAreStripped() {
        assertThat(reader("HOST", "").string("HOST")).isEqualTo("127.0.0.1");
        assertThat(reader("HOST", "  \t").string("HOST")).isEqualTo("127.0.0.1");
        assertThat(reader("PORT", " ").integer("PORT", 0, 65535)).isEqualTo(8080);
        assertThat(reader("HOST", " 0.0.0.0 \n").string("HOST")).isEqualTo("0.0.0.0");
        assertThat(reader("PORT", " 9090 ").integer("PORT", 0, 65535)).isEqualTo(9090);
    }

    @Test
    void anUndocumentedKeyIsAProgrammingError() {
        assertThatThrownBy(() -> reader("NOT_LISTED", "x").string("NOT_LISTED"))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("NOT_LISTED");
        assertThatThrownBy(() -> new EnvReader(Map.of(), List.of(new ConfigKey("A", "", "a"), new ConfigKey("A", "", "b"))))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("A");
    }

    @Test
    void wholeNumbersWithinTheirRange() {
        assertThat(reader("PORT", "0").integer("PORT", 0, 65535)).isZero();
        assertThat(reader("PORT", "-1").integer("PORT", -1, 65535)).isEqualTo(-1);
        assertThat(reader("MAX_BYTES", "1073741824").longValue("MAX_BYTES", 1, 1L << 30)).isEqualTo(1L << 30);

        assertThatThrownBy(() -> reader("PORT", "eighty").integer("PORT", 0, 65535))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("PORT must be a whole number from 0 to 65535, got 'eighty'");
        assertThatThrownBy(() -> reader("PORT", "65536").integer("PORT", 0, 65535))
                .hasMessage("PORT must be a whole number from 0 to 65535, got '65536'");
        assertThatThrownBy(() -> reader("PORT", "99999999999").integer("PORT", 0, Integer.MAX_VALUE))
                .hasMessage("PORT must be a whole number, at least 0, got '99999999999'");
        assertThatThrownBy(() -> reader("MAX_BYTES", "1.5").longValue("MAX_BYTES", 1024, Long.MAX_VALUE))
                .hasMessage("MAX_BYTES must be a whole number, at least 1024, got '1.5'");
    }

    @Test
    void durationsInEveryDocumentedForm() {
        assertThat(reader("TIMEOUT", "500ms").duration("TIMEOUT")).isEqualTo(Duration.ofMillis(500));
        assertThat(reader("TIMEOUT", "30s").duration("TIMEOUT")).isEqualTo(Duration.ofSeconds(30));
        assertThat(reader("TIMEOUT", "5m").duration("TIMEOUT")).isEqualTo(Duration.ofMinutes(5));
        assertThat(reader("TIMEOUT", "1h").duration("TIMEOUT")).isEqualTo(Duration.ofHours(1));
        assertThat(reader("TIMEOUT", "7d").duration("TIMEOUT")).isEqualTo(Duration.ofDays(7));
        assertThat(reader("TIMEOUT", "2MS").duration("TIMEOUT")).isEqualTo(Duration.ofMillis(2));
        assertThat(reader("TIMEOUT", "0").duration("TIMEOUT")).isEqualTo(Duration.ZERO);
        assertThat(reader("TIMEOUT", "PT1M30S").duration("TIMEOUT")).isEqualTo(Duration.ofSeconds(90));
        assertThat(reader("TIMEOUT", "pt0.25s").duration("TIMEOUT")).isEqualTo(Duration.ofMillis(250));
        assertThat(reader("TIMEOUT", "P2D").duration("TIMEOUT")).isEqualTo(Duration.of(2, ChronoUnit.DAYS));
    }

    @Test
    void badOrNegativeDurationsAreRefusedNamingKeyValueAndForms() {
        for (String bad : List.of("soon", "5x", "1.5s", "-5s", "-1", "750", "7", "PT-5S", "P1M", "ms", "99999999999999999d")) {
            assertThatThrownBy(() -> reader("TIMEOUT", bad).duration("TIMEOUT"))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("TIMEOUT must be " + EnvReader.DURATION_FORMS + ", got '" + bad + "'");
        }
    }

    @Test
    void aDurationWithAFloorNamesTheFloor() {
        assertThat(reader("RETENTION", "2h").duration("RETENTION", Duration.ofHours(1))).isEqualTo(Duration.ofHours(2));
        assertThat(reader("RETENTION", "60m").duration("RETENTION", Duration.ofHours(1))).isEqualTo(Duration.ofHours(1));
        assertThatThrownBy(() -> reader("RETENTION", "59m").duration("RETENTION", Duration.ofHours(1)))
                .hasMessage("RETENTION must be a duration of at least 1h with its unit, such as 500ms, 30s, 5m, 1h, 7d or PT1M30S "
                        + "(not negative; a bare number only as 0), got '59m'");
        assertThatThrownBy(() -> reader("INTERVAL", "0").duration("INTERVAL", Duration.ofMillis(1)))
                .hasMessageStartingWith("INTERVAL must be a duration of at least 1ms");
    }

    @Test
    void millisKeysTakeABareWholeNumber() {
        assertThat(reader("TTL_MS", "1500").millis("TTL_MS")).isEqualTo(Duration.ofMillis(1500));
        assertThat(reader("TTL_MS", "0").millis("TTL_MS")).isEqualTo(Duration.ZERO);
        for (String bad : List.of("fast", "5s", "-1")) {
            assertThatThrownBy(() -> reader("TTL_MS", bad).millis("TTL_MS"))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("TTL_MS must be a whole number of milliseconds (not negative), got '" + bad + "'");
        }
    }

    @Test
    void choicesAndEnums() {
        assertThat(reader("GUARANTEE", "at_least_once").oneOf("GUARANTEE", "exactly_once_v2", "at_least_once"))
                .isEqualTo("at_least_once");
        assertThatThrownBy(() -> reader("GUARANTEE", "exactly_once").oneOf("GUARANTEE", "exactly_once_v2", "at_least_once"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("GUARANTEE must be one of exactly_once_v2, at_least_once, got 'exactly_once'");
        assertThat(reader("POLICY", "FAIL_OPEN").enumValue("POLICY", Policy.class)).isEqualTo(Policy.FAIL_OPEN);
        assertThatThrownBy(() -> reader("POLICY", "SOMETIMES").enumValue("POLICY", Policy.class))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("POLICY must be one of FAIL_OPEN, FAIL_CLOSED, got 'SOMETIMES'");
    }

    @Test
    void parseNamesKeyValueAndExpectationAndKeepsTheCause() {
        assertThat(reader("HOST", "db.local").parse("HOST", "a host name", String::length)).isEqualTo(8);
        assertThatThrownBy(() -> reader("PREFIX", "a b").parse("PREFIX", "a prefix without spaces", v -> {
            if (v.contains(" ")) {
                throw new IllegalArgumentException("has a space");
            }
            return v;
        }))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("PREFIX must be a prefix without spaces, got 'a b'")
                .hasRootCauseMessage("has a space");
    }

    @Test
    void aSecretValueIsNeverEchoed() {
        assertThat(reader("PASSWORD", " s3cret ").string("PASSWORD")).isEqualTo("s3cret");
        assertThatThrownBy(() -> reader("PASSWORD", "s3cret").integer("PASSWORD", 0, 10))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("PASSWORD must be a whole number from 0 to 10, got <redacted>")
                .hasNoCause();
        assertThatThrownBy(() -> reader("PASSWORD", "s3cret").parse("PASSWORD", "base64", v -> {
            throw new IllegalArgumentException("bad input: " + v);
        }))
                .hasMessageNotContaining("s3cret")
                .hasNoCause();
        assertThat(ConfigKey.secret("PASSWORD", "", "x").secret()).isTrue();
        assertThat(new ConfigKey("HOST", "", "x").secret()).isFalse();
    }

    @Test
    void anEmptyInstanceIdDefaultsToTheHostName() {
        assertThat(reader("INSTANCE_ID", "agg-7").stringOrHostName("INSTANCE_ID", "aggregator")).isEqualTo("agg-7");
        assertThat(reader(Map.of()).stringOrHostName("INSTANCE_ID", "aggregator"))
                .isEqualTo(EnvReader.hostName("aggregator")).isNotBlank();
    }

    @Test
    void describeListsKeyDefaultAndDescriptionOnePerLine() {
        String text = EnvReader.describe(KEYS);
        assertThat(text.lines()).hasSize(KEYS.size());
        assertThat(text).startsWith("HOST (default '127.0.0.1'): Interface to bind.\n")
                .contains("PREFIX (default ''): Prefix of every name.\n");
    }
}
