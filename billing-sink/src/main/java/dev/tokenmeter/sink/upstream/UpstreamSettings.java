package dev.tokenmeter.sink.upstream;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import java.time.Duration;
import java.util.List;

/** The upstream reconciler's configuration (ADR 0086); off while {@code UPSTREAM_ADMIN_KEY} is blank. */
public record UpstreamSettings(String baseUrl, String adminKey, Duration interval, int rereadDays,
                               UpstreamReconciler.Tolerance tolerance, boolean checkOpenDay) {

    public static final List<ConfigKey> KEYS = List.of(
            ConfigKey.secret("UPSTREAM_ADMIN_KEY", "", "OpenAI admin key of the service's organization for the Usage and Costs APIs; blank = upstream reconciliation off. Never logged."),
            new ConfigKey("UPSTREAM_BASE_URL", "https://api.openai.com", "Base URL of the Usage and Costs APIs (/v1/organization/... is appended)."),
            new ConfigKey("UPSTREAM_RECONCILE_INTERVAL", "1h", "How often the upstream reconciler reads and compares."),
            new ConfigKey("UPSTREAM_REREAD_DAYS", "3", "Days before today that every run reads again (late buckets), 0..31."),
            new ConfigKey("UPSTREAM_TOLERANCE_REQUESTS", "0", "Largest |upstream - ours| request count per day and model that raises no alert."),
            new ConfigKey("UPSTREAM_TOLERANCE_TOKENS", "0", "Largest |upstream - ours| of input, cached input or output tokens per day and model that raises no alert."),
            new ConfigKey("UPSTREAM_TOLERANCE_NANO_USD", "10000000", "Largest |upstream - ours| cost per day and model, nano-USD (default 1 cent), that raises no alert."),
            new ConfigKey("UPSTREAM_CHECK_OPEN_DAY", "false", "Also check the current UTC day (true), not only days that have ended."));

    public static UpstreamSettings read(EnvReader r) {
        return new UpstreamSettings(r.string("UPSTREAM_BASE_URL"), r.string("UPSTREAM_ADMIN_KEY"),
                r.duration("UPSTREAM_RECONCILE_INTERVAL", Duration.ofMillis(1)),
                r.integer("UPSTREAM_REREAD_DAYS", 0, 31),
                new UpstreamReconciler.Tolerance(r.longValue("UPSTREAM_TOLERANCE_REQUESTS", 0, Long.MAX_VALUE),
                        r.longValue("UPSTREAM_TOLERANCE_TOKENS", 0, Long.MAX_VALUE),
                        r.longValue("UPSTREAM_TOLERANCE_NANO_USD", 0, Long.MAX_VALUE)),
                Boolean.parseBoolean(r.oneOf("UPSTREAM_CHECK_OPEN_DAY", "true", "false")));
    }

    public boolean enabled() {
        return !adminKey.isBlank();
    }

    @Override
    public String toString() {
        return "UpstreamSettings[baseUrl=" + baseUrl + ", adminKey=" + (enabled() ? "<redacted>" : "<none>") + ", interval="
                + interval + ", rereadDays=" + rereadDays + ", tolerance=" + tolerance + ", checkOpenDay=" + checkOpenDay + "]";
    }
}
