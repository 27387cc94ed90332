package dev.tokenmeter.edge.http;

import java.time.Duration;

/**
 * OpenAI's rate-limit header names and its duration format for the reset headers: {@code 1s}, {@code 6m0s},
 * {@code 20ms}, {@code 1h2m3s} (Go's {@code time.Duration} style, as OpenAI sends them).
 */
public final class RateLimitHeaders {

    public static final String LIMIT_REQUESTS = "x-ratelimit-limit-requests";
    public static final String REMAINING_REQUESTS = "x-ratelimit-remaining-requests";
    public static final String RESET_REQUESTS = "x-ratelimit-reset-requests";
    public static final String LIMIT_TOKENS = "x-ratelimit-limit-tokens";
    public static final String REMAINING_TOKENS = "x-ratelimit-remaining-tokens";
    public static final String RESET_TOKENS = "x-ratelimit-reset-tokens";
    public static final String CREDIT_REMAINING_USD = "x-credit-remaining-usd";
    public static final String SHOULD_RETRY = "x-should-retry";
    /** {@code true} on admitted answers while the month's usage is at or over the user's soft limit. */
    public static final String SOFT_LIMIT_REACHED = "x-tokenmeter-soft-limit-reached";
    /** The soft limit in percent of the monthly credit, alongside {@link #SOFT_LIMIT_REACHED}. */
    public static final String SOFT_LIMIT_PERCENT = "x-tokenmeter-soft-limit-percent";

    private RateLimitHeaders() {
    }

    /** {@code 0s}, {@code 250ms}, {@code 1s}, {@code 1.5s}, {@code 6m0s}, {@code 1h2m3s}. */
    public static String formatReset(Duration d) {
        if (d == null || d.isNegative() || d.isZero()) {
            return "0s";
        }
        long totalMs = d.toMillis();
        if (totalMs < 1000) {
            return totalMs + "ms";
        }
        long hours = totalMs / 3_600_000;
        long minutes = (totalMs / 60_000) % 60;
        long millis = totalMs % 60_000;
        StringBuilder sb = new StringBuilder();
        if (hours > 0) {
            sb.append(hours).append('h');
        }
        if (hours > 0 || minutes > 0) {
            sb.append(minutes).append('m');
        }
        long seconds = millis / 1000;
        long fraction = millis % 1000;
        sb.append(seconds);
        if (fraction > 0) {
            String f = String.format("%03d", fraction);
            while (f.endsWith("0")) {
                f = f.substring(0, f.length() - 1);
            }
            sb.append('.').append(f);
        }
        return sb.append('s').toString();
    }
}
