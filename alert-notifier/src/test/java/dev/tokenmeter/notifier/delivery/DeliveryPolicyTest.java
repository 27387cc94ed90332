package dev.tokenmeter.notifier.delivery;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

class DeliveryPolicyTest {

    private final DeliveryPolicy policy = new DeliveryPolicy(Duration.ofHours(24), Duration.ofSeconds(1),
            Duration.ofMinutes(5), Duration.ofSeconds(5), Duration.ofSeconds(10), 4);

    @Test
    void backoffDoublesFromTheInitialWaitUpToTheMaximum() {
        assertThat(policy.backoff(1, 0)).isEqualTo(Duration.ofSeconds(1));
        assertThat(policy.backoff(2, 0)).isEqualTo(Duration.ofSeconds(2));
        assertThat(policy.backoff(3, 0)).isEqualTo(Duration.ofSeconds(4));
        assertThat(policy.backoff(9, 0)).isEqualTo(Duration.ofSeconds(256));
        assertThat(policy.backoff(10, 0)).isEqualTo(Duration.ofMinutes(5));
        assertThat(policy.backoff(10_000, 0)).as("no overflow after many attempts").isEqualTo(Duration.ofMinutes(5));
    }

    @Test
    void jitterShortensByAtMostOneFifth() {
        assertThat(policy.backoff(3, 0.999)).isGreaterThan(Duration.ofMillis(3200)).isLessThanOrEqualTo(Duration.ofSeconds(4));
        assertThat(policy.backoff(10, 0.5)).isEqualTo(Duration.ofSeconds(270));
    }
}
