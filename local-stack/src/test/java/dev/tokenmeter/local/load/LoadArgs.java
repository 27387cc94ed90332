package dev.tokenmeter.local.load;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;

/**
 * The load program's command line: {@code steady [--rate R] [--minutes M] [--out DIR]} or
 * {@code max [--seconds S] [--concurrency C] [--out DIR]}; the sampling interval comes from
 * {@code -Dload.sampleSeconds} (default 10).
 */
record LoadArgs(Scenario scenario, int ratePerSecond, Duration duration, int concurrency, Path out,
                Duration sampleInterval) {

    enum Scenario { STEADY, MAX }

    static final int DEFAULT_RATE = 10;
    static final double DEFAULT_MINUTES = 2;
    static final int DEFAULT_MAX_SECONDS = 30;
    static final int DEFAULT_CONCURRENCY = 16;

    static final String USAGE = "usage: LoadProgram steady [--rate R (req/s, default " + DEFAULT_RATE + ")] [--minutes M (default "
            + DEFAULT_MINUTES + ")] [--out DIR]\n"
            + "       LoadProgram max [--seconds S (default " + DEFAULT_MAX_SECONDS + ")] [--concurrency C (default "
            + DEFAULT_CONCURRENCY + ")] [--out DIR]\n"
            + "       -Dload.sampleSeconds=N (default 10)";

    static LoadArgs parse(String[] args, String sampleSecondsProperty, Path defaultOut) {
        if (args.length == 0) {
            throw new IllegalArgumentException("no scenario\n" + USAGE);
        }
        Scenario scenario = switch (args[0]) {
            case "steady" -> Scenario.STEADY;
            case "max" -> Scenario.MAX;
            default -> throw new IllegalArgumentException("unknown scenario " + args[0] + "\n" + USAGE);
        };
        int rate = DEFAULT_RATE;
        Duration duration = scenario == Scenario.STEADY ? minutes(DEFAULT_MINUTES) : Duration.ofSeconds(DEFAULT_MAX_SECONDS);
        int concurrency = DEFAULT_CONCURRENCY;
        Path out = defaultOut;
        for (int i = 1; i < args.length; i++) {
            String flag = args[i];
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(flag + " needs a value\n" + USAGE);
            }
            String value = args[++i];
            switch (scenario + " " + flag) {
                case "STEADY --rate" -> rate = positiveInt(flag, value);
                case "STEADY --minutes" -> duration = minutes(positiveDouble(flag, value));
                case "MAX --seconds" -> duration = Duration.ofSeconds(positiveInt(flag, value));
                case "MAX --concurrency" -> concurrency = positiveInt(flag, value);
                case "STEADY --out", "MAX --out" -> out = Path.of(value);
                default -> throw new IllegalArgumentException("unknown option " + flag + " for "
                        + scenario.name().toLowerCase(Locale.ROOT) + "\n" + USAGE);
            }
        }
        int sampleSeconds = sampleSecondsProperty == null ? 10 : positiveInt("load.sampleSeconds", sampleSecondsProperty);
        return new LoadArgs(scenario, rate, duration, concurrency, out, Duration.ofSeconds(sampleSeconds));
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
