package dev.tokenmeter.local.load;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;

/**
 * The load program's command line: {@code steady [--rate R] [--minutes M]}, {@code max [--seconds S]
 * [--concurrency C]}, {@code soak [--minutes M] [--max-seconds S] [--concurrency C] [--rate R]} or {@code burst
 * [--base-minutes B] [--burst-minutes U] [--after-minutes A] [--max-seconds S] [--concurrency C] [--rate R]
 * [--base-percent P]}, each with {@code [--out DIR]} and {@code [--edge-max-in-flight N]}; the sampling interval comes
 * from {@code -Dload.sampleSeconds} (default 10).
 *
 * <p>Meaning per scenario: {@code duration} is steady's and soak's load, max's closed loop, burst's base phase before
 * the burst; {@code maxDuration} is the closed-loop maximum that soak and burst measure first; {@code ratePerSecond}
 * is steady's rate, and for soak (its rate) and burst (its base rate) 0 = derived from the measured maximum;
 * {@code basePercent} is the burst's base as a percentage of that maximum (default 5, so the 20x burst is 100 % of it;
 * above 5 the burst goes beyond capacity); {@code edgeMaxInFlight} is the edge's {@code MAX_CALLS_IN_FLIGHT} for the
 * run (0 = the edge's default).
 */
record LoadArgs(Scenario scenario, int ratePerSecond, Duration duration, int concurrency, Path out,
                Duration sampleInterval, Duration maxDuration, Duration burstDuration, Duration afterDuration,
                double basePercent, int edgeMaxInFlight) {

    enum Scenario { STEADY, MAX, SOAK, BURST }

    static final int DEFAULT_RATE = 10;
    static final double DEFAULT_MINUTES = 2;
    static final int DEFAULT_MAX_SECONDS = 30;
    static final int DEFAULT_CONCURRENCY = 16;
    static final double DEFAULT_SOAK_MINUTES = 30;
    static final int DEFAULT_SOAK_MAX_SECONDS = 60;
    static final double DEFAULT_BURST_BASE_MINUTES = 5;
    static final double DEFAULT_BURST_MINUTES = 2;
    static final double DEFAULT_BURST_AFTER_MINUTES = 5;
    static final double DEFAULT_BURST_BASE_PERCENT = 5;

    static final String USAGE = "usage: LoadProgram steady [--rate R (req/s, default " + DEFAULT_RATE + ")] [--minutes M (default "
            + DEFAULT_MINUTES + ")] [--out DIR]\n"
            + "       LoadProgram max [--seconds S (default " + DEFAULT_MAX_SECONDS + ")] [--concurrency C (default "
            + DEFAULT_CONCURRENCY + ")] [--out DIR]\n"
            + "       LoadProgram soak [--minutes M (default " + DEFAULT_SOAK_MINUTES + ")] [--max-seconds S (closed-loop"
            + " maximum first, default " + DEFAULT_SOAK_MAX_SECONDS + ")] [--concurrency C] [--rate R (skip the maximum)] [--out DIR]\n"
            + "       LoadProgram burst [--base-minutes B (default " + DEFAULT_BURST_BASE_MINUTES + ")] [--burst-minutes U"
            + " (default " + DEFAULT_BURST_MINUTES + ")] [--after-minutes A (default " + DEFAULT_BURST_AFTER_MINUTES
            + ")] [--max-seconds S] [--concurrency C] [--rate R (base rate; skip the maximum)]\n"
            + "             [--base-percent P (base = P % of the maximum, default " + DEFAULT_BURST_BASE_PERCENT + "; burst 20x that)] [--out DIR]\n"
            + "       every scenario: [--edge-max-in-flight N (the edge's MAX_CALLS_IN_FLIGHT; default: the edge's own)]\n"
            + "       -Dload.sampleSeconds=N (default 10)";

    static LoadArgs parse(String[] args, String sampleSecondsProperty, Path defaultOut) {
        if (args.length == 0) {
            throw new IllegalArgumentException("no scenario\n" + USAGE);
        }
        Scenario scenario = switch (args[0]) {
            case "steady" -> Scenario.STEADY;
            case "max" -> Scenario.MAX;
            case "soak" -> Scenario.SOAK;
            case "burst" -> Scenario.BURST;
            default -> throw new IllegalArgumentException("unknown scenario " + args[0] + "\n" + USAGE);
        };
        int rate = scenario == Scenario.STEADY ? DEFAULT_RATE : 0;
        Duration duration = switch (scenario) {
            case STEADY -> minutes(DEFAULT_MINUTES);
            case MAX -> Duration.ofSeconds(DEFAULT_MAX_SECONDS);
            case SOAK -> minutes(DEFAULT_SOAK_MINUTES);
            case BURST -> minutes(DEFAULT_BURST_BASE_MINUTES);
        };
        Duration maxDuration = Duration.ofSeconds(DEFAULT_SOAK_MAX_SECONDS);
        Duration burst = minutes(DEFAULT_BURST_MINUTES);
        Duration after = minutes(DEFAULT_BURST_AFTER_MINUTES);
        int concurrency = DEFAULT_CONCURRENCY;
        double basePercent = DEFAULT_BURST_BASE_PERCENT;
        int edgeMaxInFlight = 0;
        Path out = defaultOut;
        for (int i = 1; i < args.length; i++) {
            String flag = args[i];
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(flag + " needs a value\n" + USAGE);
            }
            String value = args[++i];
            switch (scenario + " " + flag) {
                case "STEADY --rate", "SOAK --rate", "BURST --rate" -> rate = positiveInt(flag, value);
                case "STEADY --minutes", "SOAK --minutes", "BURST --base-minutes" -> duration = minutes(positiveDouble(flag, value));
                case "MAX --seconds" -> duration = Duration.ofSeconds(positiveInt(flag, value));
                case "SOAK --max-seconds", "BURST --max-seconds" -> maxDuration = Duration.ofSeconds(positiveInt(flag, value));
                case "MAX --concurrency", "SOAK --concurrency", "BURST --concurrency" -> concurrency = positiveInt(flag, value);
                case "BURST --burst-minutes" -> burst = minutes(positiveDouble(flag, value));
                case "BURST --after-minutes" -> after = minutes(positiveDouble(flag, value));
                case "BURST --base-percent" -> {
                    basePercent = positiveDouble(flag, value);
                    if (basePercent > 100) {
                        throw new IllegalArgumentException(flag + " must be at most 100, was '" + value + "'");
                    }
                }
                case "STEADY --edge-max-in-flight", "MAX --edge-max-in-flight", "SOAK --edge-max-in-flight",
                     "BURST --edge-max-in-flight" -> edgeMaxInFlight = positiveInt(flag, value);
                case "STEADY --out", "MAX --out", "SOAK --out", "BURST --out" -> out = Path.of(value);
                default -> throw new IllegalArgumentException("unknown option " + flag + " for "
                        + scenario.name().toLowerCase(Locale.ROOT) + "\n" + USAGE);
            }
        }
        int sampleSeconds = sampleSecondsProperty == null ? 10 : positiveInt("load.sampleSeconds", sampleSecondsProperty);
        return new LoadArgs(scenario, rate, duration, concurrency, out, Duration.ofSeconds(sampleSeconds), maxDuration,
                burst, after, basePercent, edgeMaxInFlight);
    }

    private static Duration minutes(double m) {
        return Duration.ofMillis(Math.round(m * 60_000));
    }

    private static int positiveInt(String name, String value) {
        try {
            int n = Integer.parseInt(value.strip());
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(name + " must be a whole number > 0, was '" + value + "'");
    }

    private static double positiveDouble(String name, String value) {
        try {
            double d = Double.parseDouble(value.strip());
            if (d > 0 && Double.isFinite(d)) {
                return d;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(name + " must be a number > 0, was '" + value + "'");
    }
}
