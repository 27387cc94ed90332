package dev.tokenmeter.sink;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class BillingSinkConfigTest {

    @Test
    void documentedDefaultsAndTheEdgesDurationForms() {
        BillingSinkConfig c = BillingSinkConfig.fromEnv(Map.of("RETRY_BACKOFF_MAX", "PT45S", "DATABASE_USER", ""));
        assertThat(c.retryBackoffMax()).isEqualTo(Duration.ofSeconds(45));
        assertThat(c.databaseUser()).isEqualTo("tokenmeter_sink_svc");
        assertThat(c.periodCloseGrace()).isEqualTo(Duration.ofDays(3));
        assertThat(c.batchMaxRecords()).isEqualTo(2000);
        assertThat(c.metricsPort()).isEqualTo(9466);
    }

    @Test
    void aBadValueNamesTheKeyAndThePasswordIsNeverShown() {
        assertThatThrownBy(() -> BillingSinkConfig.fromEnv(Map.of("PERIOD_CLOSE_GRACE", "3 days")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("PERIOD_CLOSE_GRACE").hasMessageContaining("'3 days'");
        BillingSinkConfig c = BillingSinkConfig.fromEnv(Map.of("DATABASE_PASSWORD", "hunter2"));
        assertThat(c.databasePassword()).isEqualTo("hunter2");
        assertThat(c.toString()).doesNotContain("hunter2");
    }

    /** A zero backoff would retry a down Postgres in a tight loop; a zero period cannot be scheduled. */
    @Test
    void retryBackoffAndCloseIntervalMustBePositive() {
        assertThatThrownBy(() -> BillingSinkConfig.fromEnv(Map.of("RETRY_BACKOFF_MAX", "0s")))
                .hasMessageStartingWith("RETRY_BACKOFF_MAX must be a duration of at least 1ms");
        assertThatThrownBy(() -> BillingSinkConfig.fromEnv(Map.of("PERIOD_CLOSE_INTERVAL", "0")))
                .hasMessageStartingWith("PERIOD_CLOSE_INTERVAL must be a duration of at least 1ms");
    }
}
