package dev.tokenmeter.sink.upstream;

import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * OpenAI's USD amounts (JSON numbers or strings) to nano-USD. OpenAI's Costs API answers binary floats
 * ({@code 0.06307500000000001}), and every real cost is a whole number of nano-USD (every price is), so digits past the
 * 9th decimal are float noise: the amount is rounded half-even to the nearest nano-USD and the adjustment is reported,
 * never hidden (ADR 0086). Only the upstream's side is ever rounded; ours stays exact.
 */
public final class UsdAmounts {

    /** The longest amount text accepted (a bound on caller-controlled input: the upstream's answer). */
    static final int MAX_CHARS = 40;

    /** An amount in whole nano-USD and what rounding moved it by (nano-USD, signed: rounded minus read; 0 if exact). */
    public record NanoUsd(long nanoUsd, BigDecimal adjustmentNanoUsd) {

        public boolean rounded() {
            return adjustmentNanoUsd.signum() != 0;
        }
    }

    private UsdAmounts() {
    }

    /**
     * {@code "0.000375"} -> 375,000 nano-USD; {@code 0.06307500000000001} -> 63,075,000 (adjustment -0.00000001).
     * Refuses (IllegalArgumentException naming the value and the field) a value that is not a plain decimal or whose
     * nano-USD do not fit a long.
     */
    public static NanoUsd toNanoUsd(String decimalUsd, String where) {
        if (decimalUsd == null || decimalUsd.isBlank() || decimalUsd.length() > MAX_CHARS) {
            throw new IllegalArgumentException(where + ": amount '" + shorten(decimalUsd) + "' is not a decimal USD value");
        }
        BigDecimal usd;
        try {
            usd = new BigDecimal(decimalUsd.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where + ": amount '" + shorten(decimalUsd) + "' is not a decimal USD value");
        }
        BigDecimal nanos = usd.movePointRight(9);
        BigDecimal whole = nanos.setScale(0, RoundingMode.HALF_EVEN);
        try {
            return new NanoUsd(whole.longValueExact(), whole.subtract(nanos).stripTrailingZeros());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(where + ": amount " + decimalUsd.trim() + " USD is out of range (nano-USD in a long)");
        }
    }

    private static String shorten(String s) {
        return s == null ? "null" : s.length() > MAX_CHARS ? s.substring(0, MAX_CHARS) + "..." : s;
    }
}
