package dev.tokenmeter.edge.account;

import java.util.Optional;

/** Read side of accounts for the quota engine. Implementations may cache; {@link #invalidate} drops a user's entry. */
public interface AccountDirectory {

    Optional<Account> find(String userId);

    /** Called by the admin API after a change to the user's account, plan or personal key. */
    void invalidate(String userId);
}
