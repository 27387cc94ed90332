package dev.tokenmeter.notifier;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class NotifierConfigTest {

    private static final String TOKEN = "admin-token-0123456789";

    @Test
    void defaultsAreTheDocumentedOnes() {
        NotifierConfig c = NotifierConfig.fromEnv(Map.of("ADMIN_TOKEN", TOKEN));
        assertThat(c.delivery().retryFor()).isEqualTo(Duration.ofHours(24));
        assertThat(c.delivery().backoffInitial()).isEqualTo(Duration.ofSeconds(1));
        assertThat(c.delivery().backoffMax()).isEqualTo(Duration.ofMinutes(5));
        assertThat(c.delivery().requestTimeout()).isEqualTo(Duration.ofSeconds(10));
        assertThat(c.delivery().concurrencyPerEndpoint()).isEqualTo(4);
        assertThat(c.maxPendingAlerts()).isEqualTo(10_000);
        assertThat(c.adminHost()).isEqualTo("127.0.0.1");
    }

    @Test
    void secretsNeverAppearInItsTextNorInErrors() {
        NotifierConfig c = NotifierConfig.fromEnv(Map.of("ADMIN_TOKEN", TOKEN, "DATABASE_PASSWORD", "db-secret-pw"));
        assertThat(c.toString()).doesNotContain(TOKEN).doesNotContain("db-secret-pw");
        assertThatThrownBy(() -> NotifierConfig.fromEnv(Map.of("ADMIN_TOKEN", "short-secret")))
                .hasMessageContaining("ADMIN_TOKEN").hasMessageNotContaining("short-secret");
    }

    @Test
    void badValuesFailNamingTheKey() {
        assertThatThrownBy(() -> NotifierConfig.fromEnv(Map.of("ADMIN_TOKEN", TOKEN, "DELIVERY_RETRY_FOR", "10")))
                .hasMessageContaining("DELIVERY_RETRY_FOR");
        assertThatThrownBy(() -> NotifierConfig.fromEnv(Map.of("ADMIN_TOKEN", TOKEN, "DELIVERY_BACKOFF_INITIAL", "10s",
                "DELIVERY_BACKOFF_MAX", "1s"))).hasMessageContaining("DELIVERY_BACKOFF_MAX");
        assertThatThrownBy(() -> NotifierConfig.fromEnv(Map.of("ADMIN_TOKEN", TOKEN, "DELIVERY_CONCURRENCY_PER_ENDPOINT", "0")))
                .hasMessageContaining("DELIVERY_CONCURRENCY_PER_ENDPOINT");
        assertThat(NotifierConfig.fromEnv(Map.of("ADMIN_PORT", "-1")).adminPort()).as("no token needed when the API is off").isEqualTo(-1);
    }
}
