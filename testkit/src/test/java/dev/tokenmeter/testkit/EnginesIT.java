package dev.tokenmeter.testkit;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The life cycle of an engine set, as the launcher's plain main uses it. */
class EnginesIT {

    @Test
    void privateSetStartsOnFirstUseAndCloseStopsIt() {
        RedisEngine redis;
        try (Engines engines = Engines.create(Backend.EMBEDDED)) {
            assertThat(engines.backend()).isEqualTo(Backend.EMBEDDED);
            redis = engines.redis();
            assertThat(engines.redis()).isSameAs(redis);
            assertThat(redis.isRunning()).isTrue();
            assertThat(EmbeddedKafkaIT.accepts(redis.host() + ":" + redis.port())).isTrue();

            engines.close();

            assertThat(redis.isRunning()).isFalse();
            assertThat(EmbeddedKafkaIT.accepts(redis.host() + ":" + redis.port())).isFalse();
            assertThatThrownBy(engines::redis).isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        }
    }

    @Test
    void closingTheSharedSetDoesNotTakeItAwayFromOtherTests() {
        Engines shared = Engines.shared();
        RedisEngine redis = shared.redis();

        shared.close();

        assertThat(Engines.shared()).isSameAs(shared);
        assertThat(shared.redis()).isSameAs(redis);
        assertThat(redis.isRunning()).isTrue();
    }
}
