package dev.tokenmeter.testkit.openai;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * One request as the fake received it. Header names are looked up case-insensitively
 * ({@code headers().get("authorization")} works); repeated headers are joined with {@code ", "}.
 */
public record RecordedRequest(String method, String path, Map<String, String> headers, String body, String connectionId) {

    public RecordedRequest {
        TreeMap<String, String> copy = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
        copy.putAll(headers);
        headers = Collections.unmodifiableMap(copy);
    }

    /** The header's value, or null; the name is case-insensitive. */
    public String header(String name) {
        return headers.get(name);
    }
}
