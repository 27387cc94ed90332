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
}
