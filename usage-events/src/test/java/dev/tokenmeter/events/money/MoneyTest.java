package dev.tokenmeter.events.money;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class MoneyTest {

    @Test
    void parsesDecimalUsdExactly() {
        assertThat(Money.parseUsd("1")).isEqualTo(1_000_000_000L);
        assertThat(Money.parseUsd("0.000000001")).isEqualTo(1L);
        assertThat(Money.parseUsd("12.50")).isEqualTo(12_500_000_000L);
        assertThat(Money.parseUsd("-3.1")).isEqualTo(-3_100_000_000L);
        assertThat(Money.parseUsd(" 0.10000000000 ")).as("trailing zeros beyond 9 places are exact").isEqualTo(100_000_000L);
    }

    @Test
    void refusesToRoundOrOverflow() {
        assertThatThrownBy(() -> Money.parseUsd("0.0000000001")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("more than 9 decimal places");
        assertThatThrownBy(() -> Money.parseUsd("1e12")).isInstanceOf(ArithmeticException.class);
        assertThatThrownBy(() -> Money.parseUsd("twelve")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("twelve");
        assertThatThrownBy(() -> Money.add(Long.MAX_VALUE, 1)).isInstanceOf(ArithmeticException.class);
        assertThatThrownBy(() -> Money.cost(Long.MAX_VALUE / 2, 3)).isInstanceOf(ArithmeticException.class);
        assertThatThrownBy(() -> Money.cost(-1, 3)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void formatsEveryNano() {
        assertThat(Money.formatUsd(1L)).isEqualTo("0.000000001");
        assertThat(Money.formatUsd(1_250_000_000L)).isEqualTo("1.250000000");
        assertThat(Money.formatUsd(-5L)).isEqualTo("-0.000000005");
        assertThat(Money.formatUsdForHumans(1_234_500_000_007L)).isEqualTo("$1,234.500000007");
        assertThat(Money.formatUsdForHumans(-1_000_000_000L)).isEqualTo("-$1.000000000");
        assertThat(Money.toBigDecimalUsd(Long.MAX_VALUE)).isEqualTo(new BigDecimal("9223372036.854775807"));
    }

    @Test
    void formatAndParseRoundTrip() {
        for (long v : new long[] {0, 1, 999_999_999, 1_000_000_000, 123_456_789_012_345L, -42, Long.MAX_VALUE, Long.MIN_VALUE}) {
            assertThat(Money.parseUsd(Money.formatUsd(v))).isEqualTo(v);
        }
    }

    @Test
    void costIsTokensTimesWholeNanoPrice() {
        // gpt-4o-mini output: $0.60 per 1M tokens = 600 nano-USD per token.
        assertThat(Money.cost(1_000_000, 600)).isEqualTo(Money.parseUsd("0.60"));
        assertThat(Money.cost(7, 150)).isEqualTo(1_050L);
    }

    @Test
    void scaleRoundsHalfUpWithoutOverflow() {
        assertThat(Money.scale(Long.MAX_VALUE, 80, 100)).isEqualTo(7_378_697_629_483_820_646L);
        assertThat(Money.scale(5, 1, 2)).isEqualTo(3);
        assertThat(Money.scale(4, 1, 2)).isEqualTo(2);
        assertThat(Money.scale(-5, 1, 2)).isEqualTo(-3);
    }
}
