package dev.tokenmeter.testkit.openai;

/**
 * Makes the fake's Usage and Costs APIs disagree with what it answered, as an upstream whose bill differs from
 * the edge's would: every answered call counts {@code 1 + extraRequestsPerCall} times (requests, tokens and cost),
 * and every per-token price is {@code pricePercent} % of the list price (integer division, nano-USD).
 * Applies to every read after it is set, also for calls answered before.
 */
public record Drift(int extraRequestsPerCall, int pricePercent) {

    /** The fake reports exactly what it answered, at list price. */
    public static final Drift NONE = new Drift(0, 100);

    public Drift {
        if (extraRequestsPerCall < 0 || extraRequestsPerCall > 1000) {
            throw new IllegalArgumentException("extraRequestsPerCall must be 0..1000, was " + extraRequestsPerCall);
        }
        if (pricePercent < 0 || pricePercent > 10_000) {
            throw new IllegalArgumentException("pricePercent must be 0..10000, was " + pricePercent);
        }
    }

    public static Drift extraRequests(int perCall) {
        return new Drift(perCall, 100);
    }

    public static Drift price(int percent) {
        return new Drift(0, percent);
    }
}
