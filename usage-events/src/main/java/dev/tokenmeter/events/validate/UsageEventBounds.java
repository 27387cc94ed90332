package dev.tokenmeter.events.validate;

import dev.tokenmeter.events.log.LogSafe;

import java.time.Instant;
import java.util.Map;

/**
 * The bound and alphabet of every field of a {@code UsageEvent} a caller can influence, in one place (ADR 0053,
 * usage-events README). The edge answers 400 with these messages before any event, Redis key or log line is made
 * from a request, and {@link UsageEventValidator} applies the same rules to every event, so an app server that
 * embeds the publisher gets them too.
 *
 * <p>Why these numbers: an event stays a few KB at most, far below the producer's {@code max.request.size}; every
 * string is valid UTF-8 for Postgres (no U+0000) and short enough for a btree key; token counts and costs are far
 * above any real call yet so far below {@code Long.MAX_VALUE} that sums of millions of them cannot overflow.
 *
 * <p>Each {@code *Problem} method returns null when the value is within bounds, else a message naming the field
 * and the limit that never echoes more than a short escaped excerpt of the value.
 */
public final class UsageEventBounds {

    /** Model names: 1–128 of {@code [A-Za-z0-9._:/-]} (e.g. {@code gpt-4o-mini}, {@code ft:gpt-4o:org:x:id}). */
    public static final int MODEL_MAX_CHARS = 128;
    /** Endpoints: 1–128 of {@code [A-Za-z0-9._:/-]} (e.g. {@code /v1/chat/completions}). */
    public static final int ENDPOINT_MAX_CHARS = 128;
    /** Caller and system ids (user, tenant, API key, edge instance, provider): 1–128 of {@code [A-Za-z0-9._:@+-]}. */
    public static final int ID_MAX_CHARS = 128;
    /** Reservation ids carry a Redis hash tag ({@code {u:<user>}:...}): 1–512 of the id alphabet plus braces. */
    public static final int RESERVATION_ID_MAX_CHARS = 512;
    /** The upstream's request id: 1–320 printable ASCII characters (U+0021–U+007E). */
    public static final int UPSTREAM_REQUEST_ID_MAX_CHARS = 320;
    /** {@code model@effective_from}: 1–256 printable ASCII characters. */
    public static final int PRICE_VERSION_MAX_CHARS = 256;
    /** Price tiers an event may be billed at (ADR 0068); OpenAI's {@code default} is {@code standard}. */
    public static final java.util.List<String> SERVICE_TIERS = java.util.List.of("standard", "flex", "priority", "batch");
    public static final int ATTRIBUTES_MAX_ENTRIES = 16;
    /** Attribute keys: 1–64 of {@code [A-Za-z0-9._:-]}. */
    public static final int ATTRIBUTE_KEY_MAX_CHARS = 64;
    /** Attribute values: 0–256 characters, any but U+0000 (which Postgres text refuses). */
    public static final int ATTRIBUTE_VALUE_MAX_CHARS = 256;
    /** Each token count: 0..10^9. */
    public static final long TOKENS_MAX = 1_000_000_000L;
    /** Cost of one event: 0..10^13 nano-USD (10,000 USD). */
    public static final long COST_MAX_NANO_USD = 10_000_000_000_000L;
    /** Latency of one call: 0..10^9 ms (about 11.5 days). */
    public static final long LATENCY_MAX_MS = 1_000_000_000L;
    /** Proxy request parameters {@code max_tokens}, {@code max_completion_tokens}, {@code max_output_tokens}: 0..10^7. */
    public static final long MAX_TOKENS_PARAM_MAX = 10_000_000L;
    /** Proxy request parameter {@code n}: 1..128. */
    public static final int N_PARAM_MAX = 128;
    /** Timestamps lie in [1970-01-01, 10000-01-01). */
    public static final Instant TIME_MIN = Instant.EPOCH;
    public static final Instant TIME_MAX_EXCLUSIVE = Instant.parse("+10000-01-01T00:00:00Z");

    private static final int EXCERPT_CHARS = 32;

    private UsageEventBounds() {
    }

    public static String modelProblem(String field, String value) {
        return within(field, value, MODEL_MAX_CHARS, UsageEventBounds::modelChar, "[A-Za-z0-9._:/-]");
    }

    public static String endpointProblem(String field, String value) {
        return within(field, value, ENDPOINT_MAX_CHARS, UsageEventBounds::modelChar, "[A-Za-z0-9._:/-]");
    }

    public static String idProblem(String field, String value) {
        return within(field, value, ID_MAX_CHARS, UsageEventBounds::idChar, "[A-Za-z0-9._:@+-]");
    }

    public static String reservationIdProblem(String field, String value) {
        return within(field, value, RESERVATION_ID_MAX_CHARS, c -> idChar(c) || c == '{' || c == '}', "[A-Za-z0-9._:@+{}-]");
    }

    public static String upstreamRequestIdProblem(String field, String value) {
        return within(field, value, UPSTREAM_REQUEST_ID_MAX_CHARS, UsageEventBounds::printableAscii, "printable ASCII");
    }

    public static String priceVersionProblem(String field, String value) {
        return within(field, value, PRICE_VERSION_MAX_CHARS, UsageEventBounds::printableAscii, "printable ASCII");
    }

    /** One of {@link #SERVICE_TIERS}; the message never echoes more than an excerpt of another value. */
    public static String serviceTierProblem(String field, String value) {
        return value != null && SERVICE_TIERS.contains(value) ? null
                : field + " must be one of " + String.join(", ", SERVICE_TIERS) + ", got " + excerpt(value);
    }

    public static String tokensProblem(String field, long value) {
        return range(field, value, TOKENS_MAX, "");
    }

    public static String costProblem(String field, long value) {
        return range(field, value, COST_MAX_NANO_USD, " nano-USD");
    }

    public static String latencyProblem(String field, long value) {
        return range(field, value, LATENCY_MAX_MS, " ms");
    }

    public static String timeProblem(String field, Instant value) {
        if (value == null) {
            return field + " is required";
        }
        return value.isBefore(TIME_MIN) || !value.isBefore(TIME_MAX_EXCLUSIVE)
                ? field + " must lie in [1970-01-01T00:00:00Z, 10000-01-01T00:00:00Z), got " + value : null;
    }

    public static String attributesProblem(String field, Map<String, String> attributes) {
        if (attributes == null) {
            return null;
        }
        if (attributes.size() > ATTRIBUTES_MAX_ENTRIES) {
            return field + " may hold at most " + ATTRIBUTES_MAX_ENTRIES + " entries, got " + attributes.size();
        }
        for (Map.Entry<String, String> e : attributes.entrySet()) {
            String key = within(field + " key", e.getKey(), ATTRIBUTE_KEY_MAX_CHARS,
                    c -> idChar(c) && c != '@' && c != '+', "[A-Za-z0-9._:-]");
            if (key != null) {
                return key;
            }
            String v = e.getValue();
            if (v == null || v.length() > ATTRIBUTE_VALUE_MAX_CHARS || v.indexOf('\u0000') >= 0) {
                return field + " value of '" + e.getKey() + "' must be at most " + ATTRIBUTE_VALUE_MAX_CHARS
                        + " characters without U+0000, got " + describe(v);
            }
        }
        return null;
    }

    /** A short, escaped excerpt of a caller's string for a message ({@link LogSafe}, 32 characters). */
    public static String excerpt(String s) {
        return LogSafe.of(s, EXCERPT_CHARS);
    }

    private static String range(String field, long value, long max, String unit) {
        if (value < 0) {
            return field + " must be >= 0, got " + value;
        }
        return value > max ? field + " must be at most " + max + unit + " (range 0.." + max + "), got " + value : null;
    }

    private interface CharRule {
        boolean allows(int c);
    }

    private static String within(String field, String value, int maxChars, CharRule rule, String alphabet) {
        if (value != null && !value.isEmpty() && value.length() <= maxChars && allAllowed(value, rule)) {
            return null;
        }
        return field + " must be 1-" + maxChars + " characters of " + alphabet + ", got " + describe(value);
    }

    /** A plain loop, not {@code chars().allMatch}: this runs for every string of every event, on the sink's hot path. */
    private static boolean allAllowed(String value, CharRule rule) {
        for (int i = 0; i < value.length(); i++) {
            if (!rule.allows(value.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    private static String describe(String value) {
        return value == null ? "none" : excerpt(value);
    }

    private static boolean alnum(int c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }

    private static boolean modelChar(int c) {
        return alnum(c) || c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
    }

    private static boolean idChar(int c) {
        return alnum(c) || c == '.' || c == '_' || c == ':' || c == '@' || c == '+' || c == '-';
    }

    private static boolean printableAscii(int c) {
        return c >= 0x21 && c <= 0x7e;
    }
}
