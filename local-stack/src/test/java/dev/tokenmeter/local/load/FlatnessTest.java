package dev.tokenmeter.local.load;

import dev.tokenmeter.local.load.Flatness.Trend;
import dev.tokenmeter.local.load.Flatness.Verdict;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Random;
import java.util.function.DoubleUnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class FlatnessTest {

    private static final Duration WINDOW = Duration.ofMinutes(20);
    private static final double FLOOR = 0.02;
    private static final double LEVEL = 100e6;
    private static final double NOISE = 1e6;

    /** 10-second samples over {@code minutes}, {@code shape(t)} plus Gaussian noise of {@link #NOISE}. */
    private static double[][] series(long seed, int minutes, DoubleUnaryOperator shape) {
        Random random = new Random(seed);
        int n = minutes * 6;
        double[] t = new double[n];
        double[] y = new double[n];
        for (int i = 0; i < n; i++) {
            t[i] = i * 10.0;
            y[i] = shape.applyAsDouble(t[i]) + random.nextGaussian() * NOISE;
        }
        return new double[][] {t, y};
    }

    private static Verdict judge(double[][] s) {
        return Flatness.judge(s[0], s[1], WINDOW, FLOOR);
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
    void aNoisyLevelSeriesIsFlat(long seed) {
        Verdict v = judge(series(seed, 30, t -> LEVEL));
        assertThat(v.trend()).as(v.toString()).isEqualTo(Trend.FLAT);
        assertThat(v.noiseSigma()).as("noise estimated from successive differences").isCloseTo(NOISE, within(0.25 * NOISE));
        assertThat(v.points()).isEqualTo(121);
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
    void aSmallSteadyLeakUnderTheNoiseIsGrowing(long seed) {
        // 5 MB over 20 minutes: 0.04 MB per sample, 1/25 of the noise, less than the noise's spread of ±3 MB
        double leakPerSecond = 5e6 / 1200;
        Verdict v = judge(series(seed, 30, t -> LEVEL + leakPerSecond * t));
        assertThat(v.trend()).as(v.toString()).isEqualTo(Trend.GROWING);
        // the estimate's spread here is about 0.45 MB (20 seeds); 1.5 MB is over 3 of it
        assertThat(v.rise()).as("Theil-Sen rise over the window").isCloseTo(5e6, within(1.5e6));
        assertThat(v.tolerance()).isCloseTo(3 * NOISE, within(NOISE));
    }

    @Test
    void growthBeforeTheWindowDoesNotCount() {
        // warms up over the first 10 minutes, then level for the 20 the rule looks at
        Verdict v = judge(series(11, 30, t -> LEVEL + 30e6 * Math.min(t, 600) / 600));
        assertThat(v.trend()).as(v.toString()).isEqualTo(Trend.FLAT);
    }

    @Test
    void aStepUpThatStaysIsGrowingAndAStepDownIsNot() {
        Verdict up = judge(series(12, 30, t -> t < 1200 ? LEVEL : LEVEL + 8e6));
        assertThat(up.trend()).as(up.toString()).isEqualTo(Trend.GROWING);
        assertThat(up.shift()).isCloseTo(8e6, within(1.5e6));
        assertThat(up.noiseSigma()).as("the step does not inflate the noise").isCloseTo(NOISE, within(0.3 * NOISE));

        Verdict down = judge(series(12, 30, t -> t < 1200 ? LEVEL : LEVEL - 8e6));
        assertThat(down.trend()).as(down.toString()).isEqualTo(Trend.FLAT);
    }

    @Test
    void oneSpikeIsNoTrend() {
        Verdict v = judge(series(13, 30, t -> t == 1500 ? LEVEL + 50e6 : LEVEL));
        assertThat(v.trend()).as(v.toString()).isEqualTo(Trend.FLAT);
    }

    @Test
    void aQuietSeriesIsJudgedAgainstTheRelativeFloor() {
        double[] t = new double[121];
        double[] flat = new double[121];
        double[] creeping = new double[121];
        for (int i = 0; i < t.length; i++) {
            t[i] = i * 10.0;
            flat[i] = 200;                       // e.g. open file descriptors
            creeping[i] = 200 + i / 20;          // +6 over the window: 3 %, above a 2 % floor of 200
        }
        Verdict constant = Flatness.judge(t, flat, WINDOW, FLOOR);
        assertThat(constant.trend()).as(constant.toString()).isEqualTo(Trend.FLAT);
        assertThat(constant.noiseSigma()).isZero();
        assertThat(constant.tolerance()).isCloseTo(4.0, within(1e-9));

        Verdict creep = Flatness.judge(t, creeping, WINDOW, FLOOR);
        assertThat(creep.trend()).as(creep.toString()).isEqualTo(Trend.GROWING);
        assertThat(Flatness.judge(t, creeping, WINDOW, 0.05).trend()).as("under a 5 % floor (10)").isEqualTo(Trend.FLAT);
    }

    @Test
    void shortSeriesGetNoVerdict() {
        double[][] few = series(14, 1, t -> LEVEL);   // 6 points
        assertThat(judge(few).trend()).isEqualTo(Trend.TOO_SHORT);
        double[][] fiveMinutes = series(15, 5, t -> LEVEL + t * 1e6); // 30 points, but a quarter of the window
        assertThat(judge(fiveMinutes).trend()).isEqualTo(Trend.TOO_SHORT);
        assertThat(Flatness.judge(new double[0], new double[0], WINDOW, FLOOR).trend()).isEqualTo(Trend.TOO_SHORT);
    }

    @Test
    void missingValuesAreDropped() {
        double leakPerSecond = 5e6 / 1200;
        double[][] s = series(16, 30, t -> LEVEL + leakPerSecond * t);
        for (int i = 0; i < s[1].length; i += 7) {
            s[1][i] = Double.NaN;
        }
        s[1][s[1].length - 1] = Double.NaN; // the last probe failed: the window ends at the last value there is
        Verdict v = judge(s);
        assertThat(v.trend()).as(v.toString()).isEqualTo(Trend.GROWING);
        assertThat(v.points()).isLessThan(121).isGreaterThan(100);
        assertThat(Double.isNaN(v.rise())).isFalse();
    }
}
