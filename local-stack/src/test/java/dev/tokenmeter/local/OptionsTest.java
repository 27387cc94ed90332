package dev.tokenmeter.local;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class OptionsTest {

    @Test
    void clusterIsOffUnlessAsked() {
        assertThat(Options.parse(new String[0]).cluster()).isFalse();
        Options options = Options.parse(new String[] {"--cluster", "--duration", "20s", "--rate", "5"});
        assertThat(options.cluster()).isTrue();
        assertThat(options.duration()).isEqualTo(Duration.ofSeconds(20));
        assertThat(options.ratePerSecond()).isEqualTo(5);
    }

    @Test
    void theUsageNamesTheClusterOption() {
        assertThatThrownBy(() -> Options.parse(new String[] {"--clusters"}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("unknown option --clusters").hasMessageContaining("--cluster ");
    }
}
