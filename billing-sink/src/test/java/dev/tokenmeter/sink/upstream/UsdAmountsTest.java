package dev.tokenmeter.sink.upstream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** OpenAI's decimal USD amounts to nano-USD, exactly or not at all (issue 16, ADR 0086). */
class UsdAmountsTest {

    @Test
    void exactAmountsConvertWithoutRounding() {
        assertThat(UsdAmounts.toNanoUsdExact("0.000375", "t")).isEqualTo(375_000);
        assertThat(UsdAmounts.toNanoUsdExact("12.5", "t")).isEqualTo(12_500_000_000L);
        assertThat(UsdAmounts.toNanoUsdExact("0.000000001", "t")).isEqualTo(1);
        assertThat(UsdAmounts.toNanoUsdExact("1.230000000000", "t")).as("trailing zeros past 9 places are exact").isEqualTo(1_230_000_000L);
        assertThat(UsdAmounts.toNanoUsdExact("0", "t")).isZero();
        assertThat(UsdAmounts.toNanoUsdExact("1E-9", "t")).isEqualTo(1);
    }

    @Test
    void inexactOrMalformedAmountsAreRefusedNamingTheValue() {
        assertThatThrownBy(() -> UsdAmounts.toNanoUsdExact("0.06307500000000001", "costs 2026-12-03 line item 'x, input'"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("costs 2026-12-03 line item 'x, input'")
                .hasMessageContaining("0.06307500000000001").hasMessageContaining("more than 9 decimal places");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsdExact("0.0000000001", "t")).hasMessageContaining("refusing to round");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsdExact("99999999999999", "t")).hasMessageContaining("out of range");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsdExact("1,5", "t")).hasMessageContaining("not a decimal USD value");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsdExact(null, "t")).hasMessageContaining("not a decimal USD value");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsdExact("1".repeat(50), "t")).hasMessageContaining("not a decimal USD value");
    }
}
