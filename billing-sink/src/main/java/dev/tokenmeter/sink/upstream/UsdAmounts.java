package dev.tokenmeter.sink.upstream;

import java.math.BigDecimal;

/** OpenAI's USD amounts (decimal numbers or strings) to exact nano-USD; never rounds. */
public final class UsdAmounts {

    /** The longest amount text accepted (a bound on caller-controlled input: the upstream's answer). */
    static final int MAX_CHARS = 40;

    private UsdAmounts() {
    }

    /**
     * {@code "0.000375"} -> 375,000 nano-USD. Refuses (IllegalArgumentException naming the value and the field) a
     * value that is not a plain decimal, has more than 9 significant decimal places, or does not fit a long.
     */
    public static long toNanoUsdExact(String decimalUsd, String where) {
        if (decimalUsd == null || decimalUsd.isBlank() || decimalUsd.length() > MAX_CHARS) {
            throw new IllegalArgumentException(where + ": amount '" + shorten(decimalUsd) + "' is not a decimal USD value");
        }
        BigDecimal usd;
        try {
            usd = new BigDecimal(decimalUsd.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where + ": amount '" + shorten(decimalUsd) + "' is not a decimal USD value");
        }
        try {
            return usd.movePointRight(9).stripTrailingZeros().longValueExact();
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(where + ": amount " + decimalUsd.trim()
                    + " USD is not a whole number of nano-USD (more than 9 decimal places) or is out of range;"
                    + " refusing to round money");
        }
    }

    private static String shorten(String s) {
        return s == null ? "null" : s.length() > MAX_CHARS ? s.substring(0, MAX_CHARS) + "..." : s;
    }
}
