package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

class QuotaConfigTest {

    @Test
    void defaultsAreDocumentedAndConservative() {
        QuotaConfig c = QuotaConfig.fromEnv(Map.of());
        assertThat(c.failurePolicy()).isEqualTo(FailurePolicy.FAIL_CLOSED);
        assertThat(c.redisTimeout()).isEqualTo(Duration.ofMillis(100));
        assertThat(c.failOpenSharePercent()).isEqualTo(10);
        assertThat(c.reservationTtl()).isEqualTo(Duration.ofMinutes(10));
        assertThat(QuotaConfig.KEYS).allSatisfy(k -> {
            assertThat(k.name()).startsWith("QUOTA_");
            assertThat(k.description()).isNotBlank();
        });
    }

    @Test
    void readsEnvironment() {
        QuotaConfig c = QuotaConfig.fromEnv(Map.of("QUOTA_FAILURE_POLICY", "FAIL_OPEN", "QUOTA_FAIL_OPEN_SHARE_PERCENT", "25",
                "QUOTA_RESERVATION_TTL_MS", "1500"));
        assertThat(c.failurePolicy()).isEqualTo(FailurePolicy.FAIL_OPEN);
        assertThat(c.failOpenSharePercent()).isEqualTo(25);
        assertThat(c.reservationTtl()).isEqualTo(Duration.ofMillis(1500));
    }

    @Test
    void badValueNamesTheKey() {
        assertThatThrownBy(() -> QuotaConfig.fromEnv(Map.of("QUOTA_FAILURE_POLICY", "SOMETIMES")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("QUOTA_FAILURE_POLICY");
        assertThatThrownBy(() -> QuotaConfig.fromEnv(Map.of("QUOTA_REDIS_TIMEOUT_MS", "fast")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("QUOTA_REDIS_TIMEOUT_MS");
        assertThatThrownBy(() -> QuotaConfig.fromEnv(Map.of("QUOTA_FAIL_OPEN_SHARE_PERCENT", "0")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("QUOTA_FAIL_OPEN_SHARE_PERCENT must be a whole number from 1 to 100, got '0'");
        assertThatThrownBy(() -> QuotaConfig.fromEnv(Map.of("QUOTA_RESERVATION_TTL_MS", "-1")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("QUOTA_RESERVATION_TTL_MS");
    }
}
