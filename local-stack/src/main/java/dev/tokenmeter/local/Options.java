package dev.tokenmeter.local;

import java.time.Duration;

/** Command-line options of {@code ./run-pipeline}. */
record Options(Duration duration, int ratePerSecond, boolean keepRunning, long seed, boolean cluster) {

    static final String USAGE = """
            usage: ./run-pipeline [--duration 60s] [--rate 20] [--keep-running] [--seed 42] [--cluster]
              --duration      how long demo traffic runs (e.g. 30s, 2m)            default 45s
              --rate          requests per second sent to the edge                   default 20
              --keep-running  leave everything up afterwards and print how to use it
              --seed          seed of the traffic mix, for a reproducible run        default 42
              --cluster       Kafka as 3 brokers (every topic RF 3, min ISR 2) and the edge's Redis
                              as a Redis Cluster of 3 masters with 1 replica each (ADR 0084, 0080);
                              two edges (traffic to both in turn), two aggregators and two sinks
            """;

    static Options parse(String[] args) {
        Duration duration = Duration.ofSeconds(45);
        int rate = 20;
        boolean keep = false;
        long seed = 42;
        boolean cluster = false;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            switch (arg) {
                case "--duration" -> duration = parseDuration(value(args, ++i, arg));
                case "--rate" -> rate = parsePositive(value(args, ++i, arg), arg);
                case "--keep-running" -> keep = true;
                case "--cluster" -> cluster = true;
                case "--seed" -> seed = Long.parseLong(value(args, ++i, arg));
                case "-h", "--help" -> throw new IllegalArgumentException(USAGE);
                default -> throw new IllegalArgumentException("unknown option " + arg + "\n" + USAGE);
            }
        }
        if (rate > 500) {
            throw new IllegalArgumentException("--rate is capped at 500 requests/s for the local demo");
        }
        return new Options(duration, rate, keep, seed, cluster);
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value\n" + USAGE);
        }
        return args[i];
    }

    static Duration parseDuration(String text) {
        String t = text.strip().toLowerCase();
        try {
            if (t.endsWith("ms")) {
                return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
            }
            if (t.endsWith("s")) {
                return Duration.ofSeconds(Long.parseLong(t.substring(0, t.length() - 1)));
            }
            if (t.endsWith("m")) {
                return Duration.ofMinutes(Long.parseLong(t.substring(0, t.length() - 1)));
            }
            return Duration.ofSeconds(Long.parseLong(t));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a duration: '" + text + "' (use e.g. 30s, 2m, 500ms)");
        }
    }

    private static int parsePositive(String text, String option) {
        try {
            int v = Integer.parseInt(text.strip());
            if (v < 1) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " must be a whole number >= 1, got '" + text + "'");
        }
    }
}
