package dev.tokenmeter.sink.upstream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import org.junit.jupiter.api.Test;

/** OpenAI's USD amounts to nano-USD: exact when they are, float noise rounded and reported (issue 16, ADR 0086). */
class UsdAmountsTest {

    @Test
    void exactAmountsConvertWithoutAdjustment() {
        assertThat(UsdAmounts.toNanoUsd("0.000375", "t")).isEqualTo(new UsdAmounts.NanoUsd(375_000, BigDecimal.ZERO));
        assertThat(UsdAmounts.toNanoUsd("12.5", "t").nanoUsd()).isEqualTo(12_500_000_000L);
        assertThat(UsdAmounts.toNanoUsd("0.000000001", "t").nanoUsd()).isEqualTo(1);
        assertThat(UsdAmounts.toNanoUsd("1.230000000000", "t").rounded()).as("trailing zeros past 9 places are exact").isFalse();
        assertThat(UsdAmounts.toNanoUsd("0", "t").nanoUsd()).isZero();
        assertThat(UsdAmounts.toNanoUsd("1E-9", "t").nanoUsd()).isEqualTo(1);
    }

    @Test
    void floatNoiseIsRoundedHalfEvenAndTheAdjustmentReported() {
        UsdAmounts.NanoUsd noisy = UsdAmounts.toNanoUsd("0.06307500000000001", "t"); // seen in OpenAI's real answers
        assertThat(noisy.nanoUsd()).isEqualTo(63_075_000L);
        assertThat(noisy.rounded()).isTrue();
        assertThat(noisy.adjustmentNanoUsd()).isEqualByComparingTo("-0.00000001");
        assertThat(UsdAmounts.toNanoUsd("0.30000000000000004", "t").nanoUsd()).as("0.1 + 0.2 in binary").isEqualTo(300_000_000L);
        assertThat(UsdAmounts.toNanoUsd("0.0000000005", "t").nanoUsd()).as("half a nano-USD: to even").isZero();
        assertThat(UsdAmounts.toNanoUsd("0.0000000015", "t").nanoUsd()).isEqualTo(2);
        assertThat(UsdAmounts.toNanoUsd("0.0000000015", "t").adjustmentNanoUsd()).isEqualByComparingTo("0.5");
        assertThat(UsdAmounts.toNanoUsd(Double.toString(0.1 + 0.2 + 0.063075), "t").nanoUsd()).isEqualTo(363_075_000L);
    }

    @Test
    void malformedOrOutOfRangeAmountsAreRefusedNamingTheValue() {
        assertThatThrownBy(() -> UsdAmounts.toNanoUsd("99999999999999", "costs 2026-12-03 line item 'x, input'"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("costs 2026-12-03 line item 'x, input'").hasMessageContaining("out of range");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsd("1,5", "t")).hasMessageContaining("not a decimal USD value");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsd("NaN", "t")).hasMessageContaining("not a decimal USD value");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsd(null, "t")).hasMessageContaining("not a decimal USD value");
        assertThatThrownBy(() -> UsdAmounts.toNanoUsd("1".repeat(50), "t")).hasMessageContaining("not a decimal USD value");
    }
}
