package dev.tokenmeter.events.money;

import java.math.BigDecimal;
import java.math.BigInteger;

/**
 * Exact money arithmetic on nano-USD held in a {@code long} (1 USD = 1,000,000,000 nano-USD).
 *
 * <p>A long of nano-USD covers about ±9.2 billion USD, far beyond any single user's month. Every
 * operation is exact or throws: overflow raises {@link ArithmeticException} instead of wrapping, and
 * parsing rejects more than nine decimal places instead of rounding. There is deliberately no
 * conversion from or to binary floating point.
 * See docs/adr/0001-money-is-nano-usd.md.
 */
public final class Money {

    public static final long NANOS_PER_USD = 1_000_000_000L;
    private static final BigInteger MIN = BigInteger.valueOf(Long.MIN_VALUE);
    private static final BigInteger MAX = BigInteger.valueOf(Long.MAX_VALUE);

    private Money() {
    }

    /** Whole US dollars to nano-USD. */
    public static long usd(long dollars) {
        return Math.multiplyExact(dollars, NANOS_PER_USD);
    }

    /**
     * Parses a decimal USD amount such as {@code "12.5"} or {@code "-0.000000001"} exactly.
     *
     * @throws IllegalArgumentException for more than nine decimal places or a malformed number
     * @throws ArithmeticException if the amount does not fit in a long of nano-USD
     */
    public static long parseUsd(String text) {
        BigDecimal usd;
        try {
            usd = new BigDecimal(text.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a decimal USD amount: '" + text + "'", e);
        }
        BigDecimal nanos = usd.movePointRight(9);
        if (nanos.stripTrailingZeros().scale() > 0) {
            throw new IllegalArgumentException("USD amount has more than 9 decimal places: '" + text + "'");
        }
        return nanos.toBigIntegerExact().longValueExact();
    }

    /** Formats nano-USD as an exact decimal USD string with all nine decimals, e.g. {@code 1.250000000}. */
    public static String formatUsd(long nanoUsd) {
        return toBigDecimalUsd(nanoUsd).toPlainString();
    }

    /** Formats with a dollar sign and thousands separators, keeping every nano: {@code $1,234.500000000}. */
    public static String formatUsdForHumans(long nanoUsd) {
        BigDecimal usd = toBigDecimalUsd(nanoUsd);
        String sign = usd.signum() < 0 ? "-" : "";
        BigDecimal abs = usd.abs();
        String whole = String.format("%,d", abs.toBigInteger());
        String fraction = abs.remainder(BigDecimal.ONE).movePointRight(9).toBigInteger().toString();
        return sign + "$" + whole + "." + "0".repeat(9 - fraction.length()) + fraction;
    }

    /** Exact decimal USD (scale 9). */
    public static BigDecimal toBigDecimalUsd(long nanoUsd) {
        return BigDecimal.valueOf(nanoUsd, 9);
    }

    public static long add(long a, long b) {
        return Math.addExact(a, b);
    }

    public static long subtract(long a, long b) {
        return Math.subtractExact(a, b);
    }

    /**
     * Cost of {@code tokens} at a price of whole nano-USD per token. Exact: prices in the price table
     * are whole nano-USD per token, so no rounding ever happens here.
     */
    public static long cost(long tokens, long nanoUsdPerToken) {
        if (tokens < 0 || nanoUsdPerToken < 0) {
            throw new IllegalArgumentException("tokens and price must be >= 0, got " + tokens + " and " + nanoUsdPerToken);
        }
        return Math.multiplyExact(tokens, nanoUsdPerToken);
    }

    /**
     * {@code numerator * value / denominator}, rounded half-up, computed without intermediate overflow.
     * Used for percentages of a credit.
     */
    public static long scale(long value, long numerator, long denominator) {
        if (denominator <= 0) {
            throw new IllegalArgumentException("denominator must be > 0");
        }
        BigInteger[] qr = BigInteger.valueOf(value).multiply(BigInteger.valueOf(numerator))
                .divideAndRemainder(BigInteger.valueOf(denominator));
        BigInteger q = qr[0];
        if (qr[1].abs().shiftLeft(1).compareTo(BigInteger.valueOf(denominator)) >= 0) {
            q = q.add(BigInteger.valueOf(qr[1].signum()));
        }
        if (q.compareTo(MIN) < 0 || q.compareTo(MAX) > 0) {
            throw new ArithmeticException("long overflow");
        }
        return q.longValue();
    }
}
