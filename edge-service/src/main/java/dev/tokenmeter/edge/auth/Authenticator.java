package dev.tokenmeter.edge.auth;

import java.util.Optional;

/** Turns a presented {@code tm_...} service key into a {@link Caller}. */
public interface Authenticator {

    /** The caller, or empty for an unknown, malformed or revoked key (all answer 401 alike). */
    Optional<Caller> authenticate(String presentedKey);

    /** Forget cached lookups (after a revocation through the admin API of this process). */
    default void invalidateAll() {
    }
}
