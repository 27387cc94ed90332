package dev.tokenmeter.config;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The logging keys every service jar reads: its packaged Logback configuration ({@code logback-service.xml} in
 * this module, included by each service's {@code logback.xml}) reads them before {@code main} runs, so
 * {@link #check} only refuses at start-up a value that configuration would misread (an unknown level would be
 * taken as DEBUG, an unknown format as plain). docs/adr/0064-service-logging.md.
 */
public final class ServiceLogging {

    static final List<String> LEVELS = List.of("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF");

    public static final List<ConfigKey> KEYS = List.of(
            new ConfigKey("LOG_LEVEL", "INFO", "Root log level: TRACE, DEBUG, INFO, WARN, ERROR or OFF (any case). Libraries that "
                    + "can print wire data (Jetty, Lettuce, Netty, Kafka clients, jOOQ, Hikari, pgjdbc, Flyway) stay pinned at any level."),
            new ConfigKey("LOG_FORMAT", "plain", "plain (one line per event) or json (one JSON object per line)."));

    private ServiceLogging() {
    }

    /** Throws an {@link IllegalArgumentException} naming the key when LOG_LEVEL or LOG_FORMAT is not one of its values. */
    public static void check(Map<String, String> env) {
        EnvReader r = new EnvReader(env, KEYS);
        r.parse("LOG_LEVEL", "one of " + String.join(", ", LEVELS), v -> {
            if (!LEVELS.contains(v.toUpperCase(Locale.ROOT))) {
                throw new IllegalArgumentException("not a level");
            }
            return v;
        });
        r.oneOf("LOG_FORMAT", "plain", "json");
    }
}
