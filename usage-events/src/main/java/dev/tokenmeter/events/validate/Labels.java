package dev.tokenmeter.events.validate;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * Attribution (issue 17, ADR 0078): the bounds of a call's {@code project} and {@code labels}, and the parser of the
 * {@code x-tokenmeter-tags} header ({@code feature=chat,customer=acme}). The edge's proxy and metering API answer 400
 * with these messages before any upstream call; {@link UsageEventValidator} applies the same rules to every event.
 *
 * <p>Why these numbers: labels become rollup dimensions and ledger jsonb, so they must stay few, short and of a
 * plain alphabet (safe in a header, a Kafka key, a URL and a SQL literal without escaping); a key starts with a
 * letter so it never looks like a number or an {@code (other)} bucket.
 */
public final class Labels {

    public static final String HEADER = "x-tokenmeter-tags";
    public static final int MAX_LABELS = 8;
    /** Keys: 1–32 of {@code [a-z0-9_.-]}, the first a letter. */
    public static final int KEY_MAX_CHARS = 32;
    /** Values: 1–64 of {@code [A-Za-z0-9_.:@/-]}. */
    public static final int VALUE_MAX_CHARS = 64;
    /** The header as a whole: at most 1 KiB (1,024 characters, all ASCII when valid). */
    public static final int HEADER_MAX_CHARS = 1024;
    /** Projects (set by the operator on a service key): 1–64 of {@code [A-Za-z0-9._-]}. */
    public static final int PROJECT_MAX_CHARS = 64;

    private Labels() {
    }

    /** A label set the caller sent that breaks a bound; the message names the bad label and the bound. */
    public static final class InvalidLabelsException extends IllegalArgumentException {
        public InvalidLabelsException(String message) {
            super(message);
        }
    }

    /**
     * The labels of an {@code x-tokenmeter-tags} header, keys sorted; empty for a null or blank header. Items are
     * separated by commas, key and value by the first {@code =}; blanks around items, keys and values are ignored.
     *
     * @throws InvalidLabelsException naming the first bad label
     */
    public static Map<String, String> parseHeader(String header) {
        if (header == null || header.isBlank()) {
            return Map.of();
        }
        if (header.length() > HEADER_MAX_CHARS) {
            throw new InvalidLabelsException(HEADER + " must be at most " + HEADER_MAX_CHARS + " characters, got "
                    + header.length());
        }
        TreeMap<String, String> labels = new TreeMap<>();
        for (String item : header.split(",", -1)) {
            String trimmed = item.strip();
            int eq = trimmed.indexOf('=');
            if (eq < 0) {
                throw new InvalidLabelsException(HEADER + ": label " + UsageEventBounds.excerpt(trimmed)
                        + " must be key=value (items separated by commas)");
            }
            String key = trimmed.substring(0, eq).strip();
            String value = trimmed.substring(eq + 1).strip();
            put(labels, key, value, HEADER);
        }
        return Collections.unmodifiableMap(labels);
    }

    /**
     * Labels given as a map (the metering API's JSON {@code labels} object), checked and copied with keys sorted.
     *
     * @throws InvalidLabelsException naming the first bad label
     */
    public static Map<String, String> of(Map<String, String> given, String field) {
        if (given == null || given.isEmpty()) {
            return Map.of();
        }
        String problem = problem(field, given);
        if (problem != null) {
            throw new InvalidLabelsException(problem);
        }
        return Collections.unmodifiableMap(new TreeMap<>(given));
    }

    /** Null when the labels are within bounds, else a message naming the first bad label (for the validator). */
    public static String problem(String field, Map<String, String> labels) {
        if (labels == null || labels.isEmpty()) {
            return null;
        }
        if (labels.size() > MAX_LABELS) {
            return field + " may hold at most " + MAX_LABELS + " labels, got " + labels.size();
        }
        for (Map.Entry<String, String> e : new TreeMap<>(labels).entrySet()) {
            String p = labelProblem(field, e.getKey(), e.getValue());
            if (p != null) {
                return p;
            }
        }
        return null;
    }

    /** The header form of labels within bounds ({@code k=v,k2=v2}, keys sorted): {@link #parseHeader} reads it back. */
    public static String format(Map<String, String> labels) {
        StringBuilder s = new StringBuilder();
        new TreeMap<>(labels).forEach((k, v) -> s.append(s.isEmpty() ? "" : ",").append(k).append('=').append(v));
        return s.toString();
    }

    /** Null when the project is within bounds (null is allowed: no project), else a message. */
    public static String projectProblem(String field, String project) {
        if (project == null) {
            return null;
        }
        if (project.isEmpty() || project.length() > PROJECT_MAX_CHARS || !allowed(project, Labels::projectChar)) {
            return field + " must be 1-" + PROJECT_MAX_CHARS + " characters of [A-Za-z0-9._-], got "
                    + UsageEventBounds.excerpt(project);
        }
        return null;
    }

    private static void put(TreeMap<String, String> labels, String key, String value, String field) {
        String p = labelProblem(field, key, value);
        if (p != null) {
            throw new InvalidLabelsException(p);
        }
        if (labels.containsKey(key)) {
            throw new InvalidLabelsException(field + ": label key '" + key + "' is given twice");
        }
        if (labels.size() == MAX_LABELS) {
            throw new InvalidLabelsException(field + " may hold at most " + MAX_LABELS + " labels; '" + key
                    + "' is label " + (MAX_LABELS + 1));
        }
        labels.put(key, value);
    }

    /** Whether {@code key} is a label key within bounds (e.g. a configured rollup dimension). */
    public static boolean isKey(String key) {
        return labelProblem("key", key, "v") == null;
    }

    private static String labelProblem(String field, String key, String value) {
        if (key == null || key.isEmpty() || key.length() > KEY_MAX_CHARS || !isLetter(key.charAt(0))
                || !allowed(key, Labels::keyChar)) {
            return field + ": label key " + UsageEventBounds.excerpt(key) + " must be 1-" + KEY_MAX_CHARS
                    + " characters of [a-z0-9_.-] starting with a letter a-z";
        }
        if (value == null || value.isEmpty() || value.length() > VALUE_MAX_CHARS || !allowed(value, Labels::valueChar)) {
            return field + ": value of label '" + key + "' must be 1-" + VALUE_MAX_CHARS
                    + " characters of [A-Za-z0-9_.:@/-], got " + (value == null ? "none" : UsageEventBounds.excerpt(value));
        }
        return null;
    }

    private interface CharRule {
        boolean allows(char c);
    }

    private static boolean allowed(String s, CharRule rule) {
        for (int i = 0; i < s.length(); i++) {
            if (!rule.allows(s.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    private static boolean isLetter(char c) {
        return c >= 'a' && c <= 'z';
    }

    private static boolean digit(char c) {
        return c >= '0' && c <= '9';
    }

    private static boolean keyChar(char c) {
        return isLetter(c) || digit(c) || c == '_' || c == '.' || c == '-';
    }

    private static boolean valueChar(char c) {
        return isLetter(c) || (c >= 'A' && c <= 'Z') || digit(c) || c == '_' || c == '.' || c == ':' || c == '@'
                || c == '/' || c == '-';
    }

    private static boolean projectChar(char c) {
        return isLetter(c) || (c >= 'A' && c <= 'Z') || digit(c) || c == '_' || c == '.' || c == '-';
    }
}
