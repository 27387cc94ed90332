package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class CircuitBreakerTest {

    private final AtomicLong nanos = new AtomicLong();
    private final CircuitBreaker breaker = new CircuitBreaker(3, Duration.ofSeconds(2), nanos::get);

    @Test
    void opensAfterConsecutiveFailuresProbesAfterTheDelayAndClosesOnSuccess() {
        breaker.onFailure();
        breaker.onFailure();
        breaker.onSuccess(); // not consecutive: counting starts again
        breaker.onFailure();
        breaker.onFailure();
        assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.CLOSED);
        breaker.onFailure();
        assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.OPEN);
        assertThat(breaker.allow()).isFalse();

        nanos.addAndGet(Duration.ofSeconds(2).toNanos());
        assertThat(breaker.allow()).as("one probe").isTrue();
        assertThat(breaker.allow()).as("only one probe while half-open").isFalse();
        breaker.onFailure();
        assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.OPEN);

        nanos.addAndGet(Duration.ofSeconds(2).toNanos());
        assertThat(breaker.allow()).isTrue();
        breaker.onSuccess();
        assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.CLOSED);
        assertThat(breaker.allow()).isTrue();
    }
}
