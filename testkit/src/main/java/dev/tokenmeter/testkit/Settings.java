package dev.tokenmeter.testkit;

/** Reads a setting from a system property, else an environment variable; missing means a clear failure. */
final class Settings {

    private Settings() {
    }

    static String required(String property, String env, String description) {
        String value = System.getProperty(property);
        if (value == null || value.isBlank()) {
            value = System.getenv(env);
        }
        if (value == null || value.isBlank()) {
            throw new IllegalStateException("the external test backend needs " + description
                    + ": set system property " + property + " or environment variable " + env);
        }
        return value.strip();
    }

    static String optional(String property, String env, String defaultValue) {
        String value = System.getProperty(property);
        if (value == null || value.isBlank()) {
            value = System.getenv(env);
        }
        return value == null || value.isBlank() ? defaultValue : value.strip();
    }
}
