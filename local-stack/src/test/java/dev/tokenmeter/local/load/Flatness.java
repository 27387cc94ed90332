package dev.tokenmeter.local.load;

import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;

/**
 * The soak's flatness rule (issue 20: "no trend beyond noise over the last 20 minutes"), a pure function of a series
 * {@code (t_i, y_i)} (seconds, any unit), a window and a relative floor.
 *
 * <p>How it is computed, on the points with {@code t >= t_last - window} (empty or NaN values dropped):
 * <ol>
 *   <li><b>too short</b> when fewer than {@value #MIN_POINTS} points are left, or they span less than half the
 *       window: no verdict either way;</li>
 *   <li><b>noise</b> σ = 1.4826 · MAD(Δy) / √2, the median absolute deviation of successive differences scaled to
 *       a standard deviation. Differences cancel a trend and a single step (one large difference among many), so
 *       neither a leak nor a jump inflates the noise it is compared with;</li>
 *   <li><b>rise</b> = Theil–Sen slope (the median of the slopes of all pairs of points) × the span of the window's
 *       points: the growth the robust trend line extrapolates over the window; a few outliers (a GC pause, one slow
 *       probe) do not move it;</li>
 *   <li><b>shift</b> = median of the last quarter of the points − median of the first quarter: catches a step up
 *       that stays up, which a slope fitted through a step can understate;</li>
 *   <li><b>tolerance</b> = max(3σ, {@code relativeFloor} × |median of the window|): beyond the noise, and beyond a
 *       relative change too small to matter (e.g. 2 % of a JVM's RSS) even on a series with almost no noise;</li>
 *   <li><b>growing</b> when rise &gt; tolerance or shift &gt; tolerance; otherwise <b>flat</b>. Only growth fails:
 *       a series that falls (memory returned, a connection pool shrinking) is flat for this rule.</li>
 * </ol>
 * The verdict carries every number, so a failure message says by how much and against what.
 */
public final class Flatness {

    public static final int MIN_POINTS = 10;
    /** MAD × this estimates a normal distribution's standard deviation. */
    private static final double MAD_TO_SIGMA = 1.4826;
    private static final double NOISE_MULTIPLE = 3;

    public enum Trend { FLAT, GROWING, TOO_SHORT }

    public record Verdict(Trend trend, int points, double spanSeconds, double slopePerSecond, double rise,
                          double shift, double noiseSigma, double level, double relativeFloor, double tolerance) {

        public boolean flat() {
            return trend == Trend.FLAT;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%s: %d points over %.0f s, rise %.4g (Theil-Sen %.4g/s), "
                            + "last-vs-first-quarter shift %.4g, tolerance %.4g = max(3 x noise %.4g, %.3g x level %.4g)",
                    trend, points, spanSeconds, rise, slopePerSecond, shift, tolerance, noiseSigma, relativeFloor, level);
        }
    }

    private Flatness() {
    }

    /**
     * @param seconds       sample times, ascending
     * @param values        the series (NaN = missing)
     * @param window        how far back from the last sample to look (20 minutes in the soak)
     * @param relativeFloor the smallest rise that counts, as a fraction of the window's median level (e.g. 0.02)
     */
    public static Verdict judge(double[] seconds, double[] values, Duration window, double relativeFloor) {
        if (seconds.length != values.length) {
            throw new IllegalArgumentException(seconds.length + " times but " + values.length + " values");
        }
        if (relativeFloor < 0) {
            throw new IllegalArgumentException("relativeFloor must be >= 0, was " + relativeFloor);
        }
        double windowSeconds = window.toNanos() / 1e9;
        int last = seconds.length - 1;
        while (last >= 0 && (Double.isNaN(values[last]) || Double.isNaN(seconds[last]))) {
            last--;
        }
        if (last < 0) {
            return tooShort(0, 0, relativeFloor);
        }
        double from = seconds[last] - windowSeconds;
        int n = 0;
        double[] t = new double[seconds.length];
        double[] y = new double[seconds.length];
        for (int i = 0; i <= last; i++) {
            if (seconds[i] >= from && !Double.isNaN(values[i]) && !Double.isNaN(seconds[i])) {
                t[n] = seconds[i];
                y[n] = values[i];
                n++;
            }
        }
        t = Arrays.copyOf(t, n);
        y = Arrays.copyOf(y, n);
        double span = n == 0 ? 0 : t[n - 1] - t[0];
        if (n < MIN_POINTS || span < windowSeconds / 2) {
            return tooShort(n, span, relativeFloor);
        }
        double[] diffs = new double[n - 1];
        for (int i = 1; i < n; i++) {
            diffs[i - 1] = y[i] - y[i - 1];
        }
        double sigma = MAD_TO_SIGMA * mad(diffs) / Math.sqrt(2);
        double slope = theilSenSlope(t, y);
        double rise = slope * span;
        int quarter = Math.max(1, n / 4);
        double shift = median(Arrays.copyOfRange(y, n - quarter, n)) - median(Arrays.copyOfRange(y, 0, quarter));
        double level = median(y.clone());
        double tolerance = Math.max(NOISE_MULTIPLE * sigma, relativeFloor * Math.abs(level));
        Trend trend = rise > tolerance || shift > tolerance ? Trend.GROWING : Trend.FLAT;
        return new Verdict(trend, n, span, slope, rise, shift, sigma, level, relativeFloor, tolerance);
    }

    private static Verdict tooShort(int n, double span, double relativeFloor) {
        return new Verdict(Trend.TOO_SHORT, n, span, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                relativeFloor, Double.NaN);
    }

    /** The median of (y_j − y_i)/(t_j − t_i) over all pairs i &lt; j with t_j &gt; t_i: O(n²), 7,000 pairs for 120 samples. */
    static double theilSenSlope(double[] t, double[] y) {
        int n = t.length;
        double[] slopes = new double[n * (n - 1) / 2];
        int k = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                if (t[j] > t[i]) {
                    slopes[k++] = (y[j] - y[i]) / (t[j] - t[i]);
                }
            }
        }
        if (k == 0) {
            return 0;
        }
        return median(Arrays.copyOf(slopes, k));
    }

    /** Median of {@code a}; sorts it in place. */
    static double median(double[] a) {
        Arrays.sort(a);
        int m = a.length / 2;
        return a.length % 2 == 1 ? a[m] : (a[m - 1] + a[m]) / 2;
    }

    static double mad(double[] a) {
        double med = median(a.clone());
        double[] dev = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            dev[i] = Math.abs(a[i] - med);
        }
        return median(dev);
    }
}
