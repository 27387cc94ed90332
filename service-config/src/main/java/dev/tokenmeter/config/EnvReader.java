package dev.tokenmeter.config;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Reads a service's documented keys from an environment map. A blank or absent value means the key's
 * default; values are stripped. A bad value is an {@link IllegalArgumentException} whose message names
 * the key, the value (never a secret's) and what is expected, so start-up fails fast and says why.
 * Reading a key that is not in the list is a programming error ({@link IllegalStateException}): the
 * list is the documentation.
 */
public final class EnvReader {

    private static final String DURATION_EXAMPLES =
            " with its unit, such as 500ms, 30s, 5m, 1h, 7d or PT1M30S (not negative; a bare number only as 0)";
    static final String DURATION_FORMS = "a duration" + DURATION_EXAMPLES;

    private final Map<String, String> env;
    private final Map<String, ConfigKey> keys = new LinkedHashMap<>();

    public EnvReader(Map<String, String> env, List<ConfigKey> keys) {
        this.env = env;
        for (ConfigKey k : keys) {
            if (this.keys.put(k.name(), k) != null) {
                throw new IllegalStateException("config key " + k.name() + " is listed twice");
            }
        }
    }

    /** The value, or the default when it is blank or absent. */
    public String string(String name) {
        ConfigKey key = key(name);
        String v = env.get(name);
        return v == null || v.isBlank() ? key.defaultValue() : v.strip();
    }

    /** The value, or when it is empty the local host name ({@code fallback} when that is unknown). */
    public String stringOrHostName(String name, String fallback) {
        String v = string(name);
        return v.isEmpty() ? hostName(fallback) : v;
    }

    /** The value, parsed by {@code parser}; if it throws, the error says the value must be {@code expected}. */
    public <T> T parse(String name, String expected, Function<String, ? extends T> parser) {
        ConfigKey key = key(name);
        String v = string(name);
        try {
            return parser.apply(v);
        } catch (RuntimeException e) {
            String shown = key.secret() ? "<redacted>" : "'" + v + "'";
            IllegalArgumentException error = new IllegalArgumentException(name + " must be " + expected + ", got " + shown);
            if (!key.secret()) {
                error.initCause(e);
            }
            throw error;
        }
    }

    public int integer(String name, int min, int max) {
        return (int) longValue(name, min, max);
    }

    public long longValue(String name, long min, long max) {
        String expected = max == Long.MAX_VALUE || max == Integer.MAX_VALUE
                ? "a whole number, at least " + min
                : "a whole number from " + min + " to " + max;
        return parse(name, expected, v -> {
            long n = Long.parseLong(v);
            if (n < min || n > max) {
                throw new IllegalArgumentException("out of range");
            }
            return n;
        });
    }

    /**
     * 500ms, 30s, 5m, 1h, 7d or ISO-8601 ({@code PT1M30S}). A bare number is refused (0 excepted): whether
     * {@code DEDUP_RETENTION=7} meant 7 days or 7 ms cannot be told, and guessing wrong could bill a call twice.
     */
    public Duration duration(String name) {
        return duration(name, Duration.ZERO);
    }

    /** {@link #duration(String)} no shorter than {@code min} (e.g. a positive interval, a retention with a floor). */
    public Duration duration(String name, Duration min) {
        String expected = min.isZero() ? DURATION_FORMS : "a duration of at least " + shortForm(min) + DURATION_EXAMPLES;
        return parse(name, expected, v -> {
            Duration d = parseDuration(v);
            if (d.compareTo(min) < 0) {
                throw new IllegalArgumentException("below " + min);
            }
            return d;
        });
    }

    /** A bare whole number of milliseconds, for the keys named {@code *_MS}. */
    public Duration millis(String name) {
        return parse(name, "a whole number of milliseconds (not negative)", v -> {
            long ms = Long.parseLong(v);
            if (ms < 0) {
                throw new IllegalArgumentException("negative");
            }
            return Duration.ofMillis(ms);
        });
    }

    /** One of {@code allowed}, exactly as written there. */
    public String oneOf(String name, String... allowed) {
        List<String> choices = List.of(allowed);
        return parse(name, "one of " + String.join(", ", choices), v -> {
            if (!choices.contains(v)) {
                throw new IllegalArgumentException("not a choice");
            }
            return v;
        });
    }

    /** The constant of {@code type} with exactly this name. */
    public <E extends Enum<E>> E enumValue(String name, Class<E> type) {
        String choices = Arrays.stream(type.getEnumConstants()).map(Enum::name).collect(Collectors.joining(", "));
        return parse(name, "one of " + choices, v -> Enum.valueOf(type, v));
    }

    /** Key, default and description of each key, one per line (for {@code --help}). */
    public static String describe(List<ConfigKey> keys) {
        StringBuilder sb = new StringBuilder();
        for (ConfigKey k : keys) {
            sb.append(k.name()).append(" (default '").append(k.defaultValue()).append("'): ").append(k.description()).append('\n');
        }
        return sb.toString();
    }

    /** The local host name, the usual default of an instance id; {@code fallback} when it cannot be found. */
    public static String hostName(String fallback) {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return fallback;
        }
    }

    /** 1ms, 30s, 1h, 2d: the largest unit that divides it (as a duration key is written; also for messages naming one). */
    public static String shortForm(Duration d) {
        long ms = d.toMillis();
        if (ms != 0 && ms % 86_400_000 == 0) return ms / 86_400_000 + "d";
        if (ms != 0 && ms % 3_600_000 == 0) return ms / 3_600_000 + "h";
        if (ms != 0 && ms % 60_000 == 0) return ms / 60_000 + "m";
        if (ms != 0 && ms % 1_000 == 0) return ms / 1_000 + "s";
        return ms + "ms";
    }

    static Duration parseDuration(String text) {
        String t = text.strip().toLowerCase(Locale.ROOT);
        Duration d;
        if (t.startsWith("p") || t.startsWith("-p") || t.startsWith("+p")) {
            d = Duration.parse(t.toUpperCase(Locale.ROOT));
        } else {
            long unitMs;
            String number;
            if (t.endsWith("ms")) {
                unitMs = 1;
                number = t.substring(0, t.length() - 2);
            } else if (t.endsWith("s") || t.endsWith("m") || t.endsWith("h") || t.endsWith("d")) {
                unitMs = switch (t.charAt(t.length() - 1)) {
                    case 's' -> 1_000;
                    case 'm' -> 60_000;
                    case 'h' -> 3_600_000;
                    default -> 86_400_000;
                };
                number = t.substring(0, t.length() - 1);
            } else if (t.equals("0")) {
                unitMs = 1;
                number = t;
            } else {
                throw new IllegalArgumentException("no unit");
            }
            d = Duration.ofMillis(Math.multiplyExact(Long.parseLong(number.strip()), unitMs));
        }
        if (d.isNegative()) {
            throw new IllegalArgumentException("negative");
        }
        return d;
    }

    private ConfigKey key(String name) {
        ConfigKey key = keys.get(name);
        if (key == null) {
            throw new IllegalStateException("undocumented config key " + name + "; add it to the service's list of keys");
        }
        return key;
    }
}
