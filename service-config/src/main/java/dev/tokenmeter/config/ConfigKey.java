package dev.tokenmeter.config;

import java.util.Objects;

/**
 * One documented setting: its environment variable, its default (what a blank or absent value means) and a
 * one-line description. The value of a secret key never appears in an error message.
 */
public record ConfigKey(String name, String defaultValue, String description, boolean secret) {

    public ConfigKey {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(defaultValue, "defaultValue");
        Objects.requireNonNull(description, "description");
    }

    public ConfigKey(String name, String defaultValue, String description) {
        this(name, defaultValue, description, false);
    }

    /** A key whose value (a password, token or key) must never be echoed. */
    public static ConfigKey secret(String name, String defaultValue, String description) {
        return new ConfigKey(name, defaultValue, description, true);
    }
}
