package dev.tokenmeter.aggregator;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class AggregatorConfigTest {

    @Test
    void defaultsAreTheDocumentedOnes() {
        AggregatorConfig c = AggregatorConfig.defaults();
        assertThat(c.processingGuarantee()).isEqualTo("exactly_once_v2");
        assertThat(c.commitInterval()).isEqualTo(Duration.ofSeconds(1));
        assertThat(c.monthGrace()).isEqualTo(Duration.ofDays(2));
        assertThat(c.dedupRetention()).isEqualTo(Duration.ofDays(7));
        assertThat(c.metricsPort()).isEqualTo(9465);
        assertThat(c.sendTimeout()).isEqualTo(Duration.ofMinutes(10));
        assertThat(c.instanceId()).isNotBlank();
    }

    @Test
    void blankMeansDefaultAndABadValueNamesKeyAndValue() {
        AggregatorConfig c = AggregatorConfig.fromEnv(Map.of("HOUR_GRACE", " ", "INSTANCE_ID", "agg-2", "NUM_STREAM_THREADS", "2"));
        assertThat(c.hourGrace()).isEqualTo(Duration.ofHours(1));
        assertThat(c.instanceId()).isEqualTo("agg-2");
        assertThat(c.numStreamThreads()).isEqualTo(2);
        assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("PROCESSING_GUARANTEE", "exactly_once")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("PROCESSING_GUARANTEE").hasMessageContaining("'exactly_once'");
        assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("NUM_STREAM_THREADS", "65")))
                .hasMessage("NUM_STREAM_THREADS must be a whole number from 1 to 64, got '65'");
    }

    /** A retention shorter than a redelivery can be late would bill a redelivered call twice; 0 would dedup nothing. */
    @Test
    void dedupRetentionHasAFloorAndIntervalsMustBePositive() {
        assertThat(AggregatorConfig.fromEnv(Map.of("DEDUP_RETENTION", "1h")).dedupRetention()).isEqualTo(Duration.ofHours(1));
        for (String tooShort : new String[] {"0", "0s", "59m", "7"}) {
            assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("DEDUP_RETENTION", tooShort)))
                    .as(tooShort)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("DEDUP_RETENTION must be a duration of at least 1h")
                    .hasMessageEndingWith("got '" + tooShort + "'");
        }
        assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("EMIT_INTERVAL", "0s"))).hasMessageContaining("EMIT_INTERVAL");
        assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("COMMIT_INTERVAL", "0"))).hasMessageContaining("COMMIT_INTERVAL");
    }

    @Test
    void sendTimeoutBoundsTheProducersWaitsAndNoStoreCacheIsReserved() {
        AggregatorConfig c = AggregatorConfig.fromEnv(Map.of("SEND_TIMEOUT", "3s"));
        java.util.Properties p = AggregatorApp.streamsProperties(c, dev.tokenmeter.events.topic.Topics.withPrefix("", 3),
                AggregatorMetrics.noop());
        assertThat(p.get("producer.max.block.ms")).isEqualTo(3_000L);
        assertThat(p.get("producer.delivery.timeout.ms")).isEqualTo(3_000);
        assertThat(p.get("producer.request.timeout.ms")).isEqualTo(1_500);
        assertThat(p.get("statestore.cache.max.bytes")).isEqualTo(0L);
        assertThatThrownBy(() -> AggregatorConfig.fromEnv(Map.of("SEND_TIMEOUT", "500ms"))).hasMessageContaining("SEND_TIMEOUT");
    }
}
