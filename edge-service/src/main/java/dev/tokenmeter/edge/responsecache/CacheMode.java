package dev.tokenmeter.edge.responsecache;

import java.util.Locale;

/**
 * What the request header {@code x-tokenmeter-cache} asks of a cacheable call: {@code use} (the default: answer from
 * the cache, else call the upstream and store the answer), {@code refresh} (call the upstream and replace the entry)
 * or {@code bypass} (call the upstream, touch nothing). It never turns on a cache the caller's policy has off.
 */
public enum CacheMode {
    USE, REFRESH, BYPASS;

    public static final String HEADER = "x-tokenmeter-cache";

    /** The header's mode; absent = USE; null for any other value (the caller is told, 400). */
    public static CacheMode parse(String header) {
        if (header == null || header.isBlank()) {
            return USE;
        }
        return switch (header.strip().toLowerCase(Locale.ROOT)) {
            case "use" -> USE;
            case "refresh" -> REFRESH;
            case "bypass" -> BYPASS;
            default -> null;
        };
    }
}
