package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class QuotaLimitsTest {

    @Test
    void boundsKeepLuaArithmeticExact() {
        // A month can hold many max-size calls above the max credit and still stay below 2^53.
        assertThat(QuotaLimits.MAX_CREDIT_NANO_USD + 50 * QuotaLimits.MAX_CALL_NANO_USD).isLessThan(1L << 53);
    }

    @Test
    void badArgumentsNameTheArgument() {
        assertThatThrownBy(() -> QuotaLimits.amount("estimatedCostNanoUsd", -1)).hasMessageContaining("estimatedCostNanoUsd");
        assertThatThrownBy(() -> QuotaLimits.amount("actualCostNanoUsd", Long.MAX_VALUE)).hasMessageContaining("actualCostNanoUsd");
        assertThatThrownBy(() -> QuotaLimits.tokens("estimatedTokens", -5)).hasMessageContaining("estimatedTokens");
        assertThatThrownBy(() -> QuotaLimits.id("userId", "a{b}")).hasMessageContaining("userId");
        assertThatThrownBy(() -> QuotaLimits.id("apiKeyId", null)).hasMessageContaining("apiKeyId");
        assertThat(QuotaLimits.amount("x", QuotaLimits.MAX_CALL_NANO_USD)).isEqualTo(QuotaLimits.MAX_CALL_NANO_USD);
    }

    @Test
    void idsAreOneTo128CharactersOfTheKeyAlphabet() {
        String all = "AZaz09._:@+-";
        assertThat(QuotaLimits.id("userId", all)).isEqualTo(all);
        assertThat(QuotaLimits.id("userId", "u".repeat(128))).hasSize(128);
        for (String bad : new String[]{"", "u".repeat(129), "a b", "a{b", "a}b", "a/b", "ü", "a\nb", "a*b", "a#b"}) {
            assertThatThrownBy(() -> QuotaLimits.id("userId", bad)).as("'%s'", bad)
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("userId must be 1-128 characters");
        }
    }
}
