package dev.tokenmeter.edge.admin;

import dev.tokenmeter.events.UserLimit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.util.function.Consumer;

/**
 * What follows a committed change that can move a user's effective credit: drop the cached account state
 * ({@code onAccountChanged}, the quota engine's {@code AccountDirectory.invalidate}), then publish the new credit to
 * the compacted user-limits topic through {@link UserLimitPublisher}. When Kafka does not take it the change stays
 * saved and the caller gets a 503 asking to repeat the request (which publishes again).
 */
final class AccountChanges {

    private static final Logger LOG = LoggerFactory.getLogger(AccountChanges.class);

    private final AdminQueries queries;
    private final UserLimitPublisher userLimits;
    private final Consumer<String> onAccountChanged;
    private final Clock clock;

    /** @param userLimits null: nothing is published (only the cache is dropped) */
    AccountChanges(AdminQueries queries, UserLimitPublisher userLimits, Consumer<String> onAccountChanged, Clock clock) {
        this.queries = queries;
        this.userLimits = userLimits;
        this.onAccountChanged = onAccountChanged == null ? u -> { } : onAccountChanged;
        this.clock = clock;
    }

    /** A change that cannot move the credit (a personal key): only the cached account state goes. */
    void invalidate(String userId) {
        onAccountChanged.accept(userId);
    }

    /** Publishes the user's effective credit to user-limits, then drops cached account state. */
    void creditMayHaveChanged(String userId) {
        var l = queries.limits(userId);
        onAccountChanged.accept(userId);
        if (l == null || userLimits == null) {
            return;
        }
        try {
            userLimits.publish(UserLimit.newBuilder().setUserId(userId).setTenantId(l.getTenantId())
                    .setMonthlyCreditNanoUsd(l.getMonthlyCreditNanoUsd()).setUpdatedAt(clock.instant()).build());
        } catch (RuntimeException e) {
            LOG.error("user limit of {} not published: {}", userId, e.getMessage());
            throw new Unpublished("The change is saved, but the new limit could not be published to Kafka; "
                    + "repeat the same request to publish it.");
        }
    }

    /** The change is in the database, its user limit is not on the topic (the guard answers 503). */
    static final class Unpublished extends RuntimeException {
        Unpublished(String message) {
            super(message, null, false, false);
        }
    }
}
