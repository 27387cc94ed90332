package dev.tokenmeter.edge.http;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

class RateLimitHeadersTest {

    @Test
    void formatsResetsLikeOpenAi() {
        assertThat(RateLimitHeaders.formatReset(Duration.ZERO)).isEqualTo("0s");
        assertThat(RateLimitHeaders.formatReset(Duration.ofMillis(20))).isEqualTo("20ms");
        assertThat(RateLimitHeaders.formatReset(Duration.ofSeconds(1))).isEqualTo("1s");
        assertThat(RateLimitHeaders.formatReset(Duration.ofMillis(6_500))).isEqualTo("6.5s");
        assertThat(RateLimitHeaders.formatReset(Duration.ofMinutes(6))).isEqualTo("6m0s");
        assertThat(RateLimitHeaders.formatReset(Duration.ofSeconds(3723))).isEqualTo("1h2m3s");
        assertThat(RateLimitHeaders.formatReset(Duration.ofHours(2))).isEqualTo("2h0m0s");
    }

    @Test
    void errorJsonHasOpenAisShape() {
        String json = OpenAiError.invalidRequest("You must provide a model parameter.", "model").toJson();
        assertThat(json).isEqualTo("{\"error\":{\"message\":\"You must provide a model parameter.\","
                + "\"type\":\"invalid_request_error\",\"param\":\"model\",\"code\":null}}");
        assertThat(OpenAiError.insufficientQuota("x").status()).isEqualTo(429);
        assertThat(OpenAiError.insufficientQuota("x").retryable()).isFalse();
    }
}
