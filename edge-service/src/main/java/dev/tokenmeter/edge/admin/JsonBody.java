package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.events.money.Money;
import io.javalin.http.Context;

import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.tokenmeter.edge.auth.ModelAllowList;

import java.io.IOException;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;

import static dev.tokenmeter.edge.admin.AdminError.bad;

/**
 * Reading and checking the admin API's JSON bodies, and writing its answers. Every check throws an
 * {@link AdminError} (400) that names the field. Money is never read from a JSON number with a fraction: an exact
 * decimal string ({@code "12.50"}) or an integer of nano-USD.
 */
final class JsonBody {

    static final ObjectMapper JSON = new ObjectMapper();

    /**
     * A field that may be absent, present with a value, or present as {@code null} (which clears an override):
     * {@code present} tells the first case from the last.
     */
    record Given<T>(boolean present, T value) {
        static <T> Given<T> absent() {
            return new Given<>(false, null);
        }
    }

    private JsonBody() {
    }

    /** The request body as a JSON object. */
    static JsonNode object(Context ctx) {
        return object(ctx.bodyAsBytes());
    }

    static JsonNode object(byte[] body) {
        try {
            JsonNode n = JSON.readTree(body);
            if (n == null || !n.isObject()) {
                throw bad("The body must be a JSON object.", null);
            }
            return n;
        } catch (IOException e) {
            throw bad("The body is not valid JSON.", null);
        }
    }

    static String requiredText(JsonNode b, String field) {
        JsonNode n = b.get(field);
        if (n == null || !n.isTextual() || n.asText().isBlank()) {
            throw bad("'" + field + "' is required (a non-empty string).", field);
        }
        return n.asText().strip();
    }

    /**
     * Money from {@code <prefix>_usd} (exact decimal string) or {@code <prefix>_nano_usd} (integer), never negative;
     * present when either field is given, with a null value when neither has one (an explicit null clears).
     */
    static Given<Long> money(JsonNode b, String prefix) {
        JsonNode usd = b.get(prefix + "_usd");
        JsonNode nano = b.get(prefix + "_nano_usd");
        boolean present = usd != null || nano != null;
        if (usd != null && nano != null && !usd.isNull() && !nano.isNull()) {
            throw bad("Give either '" + prefix + "_usd' or '" + prefix + "_nano_usd', not both.", prefix + "_usd");
        }
        long value;
        if (usd != null && !usd.isNull()) {
            if (!usd.isTextual()) {
                throw bad("'" + prefix + "_usd' must be a decimal string such as \"12.50\" (no floating point for money).", prefix + "_usd");
            }
            try {
                value = Money.parseUsd(usd.asText());
            } catch (IllegalArgumentException | ArithmeticException e) {
                throw bad("'" + prefix + "_usd': " + e.getMessage(), prefix + "_usd");
            }
        } else if (nano != null && !nano.isNull()) {
            if (!nano.isIntegralNumber() || !nano.canConvertToLong()) {
                throw bad("'" + prefix + "_nano_usd' must be an integer.", prefix + "_nano_usd");
            }
            value = nano.asLong();
        } else {
            return new Given<>(present, null);
        }
        if (value < 0) {
            throw bad("'" + prefix + "' must not be negative.", prefix + "_usd");
        }
        return new Given<>(true, value);
    }

    /** A positive integer; present with a null value when the field is {@code null}. */
    static Given<Long> positiveLong(JsonNode b, String field) {
        JsonNode n = b.get(field);
        if (n == null || n.isNull()) {
            return new Given<>(n != null, null);
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong() || n.asLong() <= 0) {
            throw bad("'" + field + "' must be a positive integer.", field);
        }
        return new Given<>(true, n.asLong());
    }

    /** A non-negative integer of nano-USD per token; null when absent (or null) and not required. */
    static Long nonNegative(JsonNode b, String field, boolean required) {
        JsonNode n = b.get(field);
        if (n == null || n.isNull()) {
            if (required) {
                throw bad("'" + field + "' is required (integer nano-USD per token).", field);
            }
            return null;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong() || n.asLong() < 0) {
            throw bad("'" + field + "' must be a non-negative integer (nano-USD per token).", field);
        }
        return n.asLong();
    }

    /**
     * A model allow-list (ADR 0077): an array of model names within {@link ModelAllowList}'s bounds; present with a null
     * value when the field is {@code null} or {@code []} (the list cleared: every model allowed).
     */
    static Given<List<String>> modelList(JsonNode b, String field) {
        JsonNode n = b.get(field);
        if (n == null) {
            return Given.absent();
        }
        if (n.isNull() || (n.isArray() && n.isEmpty())) {
            return new Given<>(true, null);
        }
        if (!n.isArray() || n.size() > ModelAllowList.MAX_MODELS) {
            throw bad("'" + field + "' must be an array of at most " + ModelAllowList.MAX_MODELS + " model names (null or [] clears it).", field);
        }
        List<String> models = new ArrayList<>();
        for (JsonNode m : n) {
            if (!m.isTextual()) {
                throw bad("'" + field + "' must hold model names (strings).", field);
            }
            models.add(m.asText());
        }
        String problem = ModelAllowList.problem(models);
        if (problem != null) {
            throw bad("'" + field + "': " + problem + ".", field);
        }
        return new Given<>(true, List.copyOf(new LinkedHashSet<>(models)));
    }

    /** An ISO-8601 instant ({@code 2026-12-31T23:59:59Z}, an offset allowed); present with a null value when null. */
    static Given<OffsetDateTime> instant(JsonNode b, String field) {
        JsonNode n = b.get(field);
        if (n == null || n.isNull()) {
            return new Given<>(n != null, null);
        }
        try {
            if (!n.isTextual() || n.asText().length() > 40) {
                throw new DateTimeParseException("not a string", "", 0);
            }
            return new Given<>(true, OffsetDateTime.parse(n.asText()));
        } catch (DateTimeParseException e) {
            throw bad("'" + field + "' must be an ISO-8601 instant such as \"2026-12-31T23:59:59Z\" (null clears it).", field);
        }
    }

    /** The stored form of a model allow-list: null when cleared. */
    static String[] modelArray(List<String> models) {
        return models == null ? null : models.toArray(String[]::new);
    }

    /** A stored model allow-list as JSON: null when none. */
    static void putModels(ObjectNode n, String field, String[] models) {
        if (models == null || models.length == 0) {
            n.putNull(field);
        } else {
            ArrayNode a = n.putArray(field);
            for (String m : models) {
                a.add(m);
            }
        }
    }

    static void write(Context ctx, int status, JsonNode node) {
        ctx.status(status).contentType("application/json").result(node.toString());
    }

    static void putNullable(ObjectNode n, String field, Long v) {
        if (v == null) {
            n.putNull(field);
        } else {
            n.put(field, v);
        }
    }
}
