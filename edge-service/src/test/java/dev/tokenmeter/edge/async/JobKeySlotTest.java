package dev.tokenmeter.edge.async;

import io.lettuce.core.cluster.SlotHash;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Proxy;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The enqueue script's three keys share the stream's Redis Cluster slot for any stream name (ADR 0090). */
class JobKeySlotTest {

    /** Key names need no Redis: any command fails. */
    @SuppressWarnings("unchecked")
    private static final RedisClusterCommands<String, String> NO_REDIS = (RedisClusterCommands<String, String>) Proxy.newProxyInstance(
            JobKeySlotTest.class.getClassLoader(), new Class<?>[]{RedisClusterCommands.class}, (p, m, a) -> {
                throw new UnsupportedOperationException(m.getName());
            });

    private static JobStore store(String stream) {
        return new JobStore(NO_REDIS, new AsyncJobsConfig(stream, 0, 2, Duration.ofHours(1), 4,
                Duration.ofMillis(500), Duration.ofSeconds(60), "", false));
    }

    @Test
    void jobHashAndTenantCounterAreInTheStreamsSlot() {
        for (String stream : new String[]{"tm:async:jobs", "jobs", "{tm}:async:jobs", "a{b}c"}) {
            JobStore s = store(stream);
            int slot = SlotHash.getSlot(stream);
            for (String tenant : new String[]{"t-1", "8f9c0a52-0000-4000-8000-000000000001", "{x}"}) {
                assertThat(SlotHash.getSlot(s.jobKey(tenant, "j"))).as(stream + " / " + tenant).isEqualTo(slot);
                assertThat(SlotHash.getSlot(s.queuedKey(tenant))).as(stream + " / " + tenant).isEqualTo(slot);
            }
        }
        // Two tenants' keys are distinct.
        JobStore s = store("tm:async:jobs");
        assertThat(s.jobKey("a", "j")).isNotEqualTo(s.jobKey("b", "j"));
        assertThat(s.queuedKey("a")).isEqualTo("{tm:async:jobs}:a:queued");
    }

    @Test
    void aStreamNameWhoseSlotCannotBeSharedIsRefused() {
        assertThatThrownBy(() -> store("a{}b")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store("a}b")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store("a{b")).isInstanceOf(IllegalArgumentException.class);
    }
}
