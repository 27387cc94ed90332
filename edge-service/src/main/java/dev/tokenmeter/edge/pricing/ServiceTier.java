package dev.tokenmeter.edge.pricing;

import dev.tokenmeter.events.validate.UsageEventBounds;

import java.util.Locale;
import java.util.Optional;

/**
 * The price tiers OpenAI bills (ADR 0068); {@link #dbName} is the {@code service_tier} of {@code model_price}, the
 * ledger and the event. OpenAI's own word for the standard tier is {@code default}.
 */
public enum ServiceTier {
    STANDARD, FLEX, PRIORITY, BATCH;

    static {
        for (ServiceTier t : values()) {
            if (!UsageEventBounds.SERVICE_TIERS.contains(t.dbName())) {
                throw new ExceptionInInitializerError("tier " + t + " is not in UsageEventBounds.SERVICE_TIERS");
            }
        }
    }

    public String dbName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** {@code standard}, {@code flex}, {@code priority} or {@code batch}; empty for anything else. */
    public static Optional<ServiceTier> ofDbName(String s) {
        if (s == null) {
            return Optional.empty();
        }
        for (ServiceTier t : values()) {
            if (t.dbName().equals(s)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }

    /**
     * A {@code service_tier} as OpenAI writes it in an answer: {@code default} (or {@code standard}) is
     * {@link #STANDARD}, {@code flex}, {@code priority} and {@code batch} are themselves; anything else (a tier we
     * have no word for, e.g. {@code scale}) is empty.
     */
    public static Optional<ServiceTier> ofOpenAi(String s) {
        return "default".equals(s) ? Optional.of(STANDARD) : ofDbName(s);
    }

    /**
     * The tier a request asks for, which drives only its estimate: {@code flex} or {@code priority}; absent,
     * {@code auto}, {@code default} or anything else is estimated at {@link #STANDARD} (the upstream's answer says
     * what ran, and that is billed). {@code batch} is not a request tier (the Batch API is).
     */
    public static ServiceTier requested(String s) {
        return "flex".equals(s) ? FLEX : "priority".equals(s) ? PRIORITY : STANDARD;
    }
}
