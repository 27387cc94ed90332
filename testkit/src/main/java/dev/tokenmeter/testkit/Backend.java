package dev.tokenmeter.testkit;

import java.util.Arrays;
import java.util.Locale;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;

/**
 * Where the test engines come from. Chosen explicitly, never guessed: a missing Docker engine must not
 * silently turn a "containers" run into an "embedded" one.
 */
public enum Backend {
    /** Engines in or beside this JVM: a forked Kafka KRaft broker, embedded Redis and Postgres. Needs only a JDK. */
    EMBEDDED,
    /** Testcontainers (Kafka, Postgres, Redis images). Needs a Docker engine. */
    CONTAINERS,
    /** Already running servers named by settings (see {@link Engines}). */
    EXTERNAL;

    public static final String PROPERTY = "tokenmeter.test.backend";
    public static final String ENV = "TOKENMETER_TEST_BACKEND";

    /**
     * From system property tokenmeter.test.backend, else env TOKENMETER_TEST_BACKEND, else EMBEDDED; an unknown
     * value throws IllegalArgumentException naming the key and the allowed values. Never guessed (no Docker
     * auto-detection).
     */
    public static Backend fromEnvironment() {
        return from(System::getProperty, System::getenv);
    }

    static Backend from(UnaryOperator<String> properties, UnaryOperator<String> environment) {
        String property = properties.apply(PROPERTY);
        if (property != null && !property.isBlank()) {
            return parse(PROPERTY, property);
        }
        String env = environment.apply(ENV);
        if (env != null && !env.isBlank()) {
            return parse(ENV, env);
        }
        return EMBEDDED;
    }

    private static Backend parse(String key, String value) {
        try {
            return valueOf(value.strip().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            String allowed = Arrays.stream(values()).map(b -> b.name().toLowerCase(Locale.ROOT))
                    .collect(Collectors.joining(", "));
            throw new IllegalArgumentException(
                    key + "='" + value + "' is not a test backend; allowed values: " + allowed, e);
        }
    }
}
