package dev.tokenmeter.config;

import java.util.Arrays;
import java.util.List;
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

    /** Several lists of keys as one (a service's own keys and shared ones such as {@link KafkaClientSettings#KEYS}). */
    @SafeVarargs
    public static List<ConfigKey> join(List<ConfigKey>... lists) {
        return Arrays.stream(lists).flatMap(List::stream).toList();
    }

    /** A key whose value (a password, token or key) must never be echoed. */
    public static ConfigKey secret(String name, String defaultValue, String description) {
        return new ConfigKey(name, defaultValue, description, true);
    }
}
