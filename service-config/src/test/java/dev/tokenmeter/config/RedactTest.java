package dev.tokenmeter.config;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** Issue 13: credentials inside URLs are hidden wherever configuration is printed. */
class RedactTest {

    @Test
    void userInfoPasswordIsHiddenAndTheUserKept() {
        assertThat(Redact.url("redis://edge:s3cret@redis:6379/0")).isEqualTo("redis://edge:***@redis:6379/0");
        assertThat(Redact.url("redis://:s3cret@redis:6379")).isEqualTo("redis://:***@redis:6379");
        assertThat(Redact.url("rediss://default:p%40ss@cache.example.com:6380?timeout=5s"))
                .isEqualTo("rediss://default:***@cache.example.com:6380?timeout=5s");
    }

    @Test
    void aPasswordOnlyUserInfoIsHidden() {
        // Lettuce reads redis://secret@host as the password.
        assertThat(Redact.url("redis://s3cret@redis:6379")).isEqualTo("redis://***@redis:6379");
    }

    @Test
    void everyHostOfAMultiHostUrlIsCovered() {
        assertThat(Redact.url("redis-sentinel://:pw1@h1:26379,:pw2@h2:26379/0#mymaster"))
                .doesNotContain("pw1").doesNotContain("pw2").contains("h1:26379").contains("h2:26379");
    }

    @Test
    void secretQueryParametersAreHidden() {
        assertThat(Redact.url("jdbc:postgresql://db:5432/tokenmeter?password=s3cret"))
                .isEqualTo("jdbc:postgresql://db:5432/tokenmeter?password=***");
        assertThat(Redact.url("jdbc:postgresql://db/tm?user=sink&password=s3cret&sslmode=require&sslpassword=k3y"))
                .isEqualTo("jdbc:postgresql://db/tm?user=sink&password=***&sslmode=require&sslpassword=***");
        assertThat(Redact.url("jdbc:sqlserver://db;user=sa;Password=s3cret;database=x"))
                .isEqualTo("jdbc:sqlserver://db;user=sa;Password=***;database=x");
        assertThat(Redact.url("https://host/path?access_token=abc&x=1")).isEqualTo("https://host/path?access_token=***&x=1");
    }

    @Test
    void urlsWithoutCredentialsAreUnchanged() {
        for (String plain : new String[] {"redis://127.0.0.1:6379", "jdbc:postgresql://127.0.0.1:5432/tokenmeter",
                "jdbc:postgresql://db/tm?sslmode=require&user=edge", "kafka-1:9092,kafka-2:9092", "https://api.openai.com", ""}) {
            assertThat(Redact.url(plain)).isEqualTo(plain);
        }
        assertThat(Redact.url(null)).isNull();
    }
}
