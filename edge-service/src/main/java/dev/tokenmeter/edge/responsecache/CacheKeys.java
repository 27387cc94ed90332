package dev.tokenmeter.edge.responsecache;

import com.fasterxml.jackson.databind.JsonNode;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Which requests the cache may answer, and the Redis key of their entry (ADR 0074).
 *
 * <p>The key is {@code rc:{<tenant>}:<sha-256>} of the endpoint and the canonical request: object keys sorted,
 * no whitespace, numbers in one form per value ({@code 0}, {@code 0.0} and {@code 0e0} are one number), so
 * key order and spacing never split an entry. The whole body counts — model, messages, every parameter, the
 * {@code user} field, {@code stream} — so only the same request finds the same answer. The tenant is part of the
 * key (and its hash tag), so no tenant can read another's answers, whatever the requests hash to.
 */
public final class CacheKeys {

    /** The endpoints whose answers can be given again; /v1/responses keeps server-side state and is not cached. */
    public static final List<String> ENDPOINTS = List.of("/v1/chat/completions", "/v1/completions", "/v1/embeddings");

    private CacheKeys() {
    }

    /**
     * A request whose answer can be given again: embeddings always (deterministic); chat and completions with
     * {@code temperature} 0 or a {@code seed}, or any of them when the policy says so.
     */
    public static boolean cacheable(String endpoint, JsonNode request, boolean anyRequest) {
        if (!ENDPOINTS.contains(endpoint)) {
            return false;
        }
        if (anyRequest || endpoint.equals("/v1/embeddings")) {
            return true;
        }
        JsonNode temperature = request.get("temperature");
        JsonNode seed = request.get("seed");
        return (temperature != null && temperature.isNumber() && temperature.asDouble() == 0)
                || (seed != null && seed.isIntegralNumber());
    }

    /** The entry's Redis key for this tenant's request at this endpoint. */
    public static String key(String tenantId, String endpoint, JsonNode request) {
        StringBuilder canonical = new StringBuilder(256).append(endpoint).append('\n');
        canonical(request, canonical);
        byte[] digest;
        try {
            digest = MessageDigest.getInstance("SHA-256").digest(canonical.toString().getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
        // The tenant id comes from our database (bounded, ADR 0053), never from the request.
        return "rc:{" + tenantId + "}:" + HexFormat.of().formatHex(digest);
    }

    /** The request in canonical JSON: sorted keys, no spaces, plain numbers. */
    static String canonical(JsonNode node) {
        StringBuilder out = new StringBuilder();
        canonical(node, out);
        return out.toString();
    }

    private static void canonical(JsonNode node, StringBuilder out) {
        if (node.isObject()) {
            List<String> names = new ArrayList<>();
            node.fieldNames().forEachRemaining(names::add);
            names.sort(null);
            out.append('{');
            for (int i = 0; i < names.size(); i++) {
                if (i > 0) {
                    out.append(',');
                }
                quoted(names.get(i), out);
                out.append(':');
                canonical(node.get(names.get(i)), out);
            }
            out.append('}');
        } else if (node.isArray()) {
            out.append('[');
            for (int i = 0; i < node.size(); i++) {
                if (i > 0) {
                    out.append(',');
                }
                canonical(node.get(i), out);
            }
            out.append(']');
        } else if (node.isNumber()) {
            out.append(number(node));
        } else if (node.isTextual()) {
            quoted(node.textValue(), out);
        } else {
            out.append(node.toString()); // true, false, null
        }
    }

    /**
     * One form per value: 0, 0.0 and 0e0 are "0", 1.50 is "1.5". toString, not toPlainString: 1e300 must not become
     * 300 digits. A number beyond a double (1e999999999 parses as infinity) keeps Jackson's text of it.
     */
    private static String number(JsonNode node) {
        BigDecimal d;
        if (node.isIntegralNumber() || node.isBigDecimal()) {
            d = node.decimalValue();
        } else if (Double.isFinite(node.doubleValue())) {
            d = BigDecimal.valueOf(node.doubleValue());
        } else {
            return node.asText();
        }
        d = d.stripTrailingZeros();
        return d.signum() == 0 ? "0" : d.toString();
    }

    private static void quoted(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        out.append('"');
    }
}
