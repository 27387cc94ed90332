package dev.tokenmeter.events.topic;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TopicsTest {

    @Test
    void namesComeFromConfig() {
        Topics topics = Topics.fromEnv(Map.of("TOPIC_PREFIX", "staging.", "TOPIC_PARTITIONS", "3"));
        assertThat(topics.usageEvents().name()).isEqualTo("staging.usage-events");
        assertThat(topics.all()).hasSize(9).allSatisfy(t -> {
            assertThat(t.name()).startsWith("staging.");
            assertThat(t.partitions()).isEqualTo(3);
        });
        assertThat(topics.userLimits().configs()).containsEntry("cleanup.policy", "compact");
        assertThat(topics.usageEvents().configs()).containsEntry("retention.ms", "-1");
        assertThat(topics.rollups().name()).isEqualTo("staging.usage-rollups");
    }

    @Test
    void aBadValueNamesTheKey() {
        assertThatThrownBy(() -> Topics.fromEnv(Map.of("TOPIC_PARTITIONS", "six")))
                .hasMessageContaining("TOPIC_PARTITIONS").hasMessageContaining("six");
        assertThatThrownBy(() -> Topics.fromEnv(Map.of("TOPIC_PARTITIONS", "0")))
                .hasMessageContaining("partitions must be >= 1");
    }
}
