package dev.tokenmeter.notifier.webhook;

import java.util.UUID;

/**
 * A tenant's endpoint (table {@code webhook}, V18). Neither the secret nor the URL's path and query appear in
 * {@link #toString()}: a Slack webhook's URL is itself a credential.
 */
public record Webhook(UUID id, String tenantId, String url, String secret, Format format, boolean enabled) {

    /** The body's shape: the notifier's own JSON, or a Slack incoming-webhook message ({@code text}). */
    public enum Format {
        JSON, SLACK;

        public String wireName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        public static Format of(String wireName) {
            return switch (wireName) {
                case "json" -> JSON;
                case "slack" -> SLACK;
                default -> throw new IllegalArgumentException("format must be json or slack");
            };
        }
    }

    /** Scheme, host and port only: what may be logged of the URL. */
    public String origin() {
        try {
            java.net.URI u = java.net.URI.create(url);
            return u.getScheme() + "://" + u.getHost() + (u.getPort() >= 0 ? ":" + u.getPort() : "");
        } catch (IllegalArgumentException e) {
            return "<unparseable url>";
        }
    }

    @Override
    public String toString() {
        return "Webhook[id=" + id + ", tenantId=" + tenantId + ", origin=" + origin() + ", format=" + format.wireName()
                + ", enabled=" + enabled + ", secret=<redacted>]";
    }
}
