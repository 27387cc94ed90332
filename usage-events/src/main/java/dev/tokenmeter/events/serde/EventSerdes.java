package dev.tokenmeter.events.serde;

import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageRollup;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.UserLimit;

/** Shared serde instances for the contract's record types (they are stateless and thread-safe). */
public final class EventSerdes {

    private static final AvroSerde<UsageEvent> USAGE_EVENT = AvroSerde.forType(UsageEvent.class);
    private static final AvroSerde<UsageTotal> USAGE_TOTAL = AvroSerde.forType(UsageTotal.class);
    private static final AvroSerde<UsageAlert> USAGE_ALERT = AvroSerde.forType(UsageAlert.class);
    private static final AvroSerde<UserLimit> USER_LIMIT = AvroSerde.forType(UserLimit.class);
    private static final AvroSerde<UsageRollup> USAGE_ROLLUP = AvroSerde.forType(UsageRollup.class);

    private EventSerdes() {
    }

    public static AvroSerde<UsageEvent> usageEvent() {
        return USAGE_EVENT;
    }

    public static AvroSerde<UsageTotal> usageTotal() {
        return USAGE_TOTAL;
    }

    public static AvroSerde<UsageAlert> usageAlert() {
        return USAGE_ALERT;
    }

    public static AvroSerde<UserLimit> userLimit() {
        return USER_LIMIT;
    }

    /** Issue 17 (ADR 0078): daily and monthly rollups per user, project and label dimension value. */
    public static AvroSerde<UsageRollup> usageRollup() {
        return USAGE_ROLLUP;
    }
}
