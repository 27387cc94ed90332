package dev.tokenmeter.edge.metering;

import org.junit.jupiter.api.Test;

import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Issue 14, finding 5: caller-chosen event ids are scoped to their user. */
class CallerEventIdsTest {

    private static final String CALLER_ID = "0b5e3c0e-6f2a-4b8e-9d3c-2a1f4e5d6c7b";

    @Test
    void nameUuidV5_matchesTheRfcExample() {
        // RFC 9562 appendix A.4 ("www.example.com" in the DNS namespace) and Python's documented uuid5 example.
        UUID dns = UUID.fromString("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
        assertThat(CallerEventIds.nameUuidV5(dns, "www.example.com"))
                .isEqualTo(UUID.fromString("2ed6657d-e927-568b-95e1-2665a8aea6a2"));
        assertThat(CallerEventIds.nameUuidV5(dns, "python.org"))
                .isEqualTo(UUID.fromString("886313e1-3b8a-5372-9b90-0c9aee199e5d"));
    }

    @Test
    void sameCallerId_fromTwoUsers_givesTwoStoredIds() {
        assertThat(CallerEventIds.stored("u-alice", CALLER_ID)).isNotEqualTo(CallerEventIds.stored("u-bob", CALLER_ID));
    }

    @Test
    void sameCallerId_fromOneUser_alwaysGivesTheSameStoredId_whateverItsLetterCase() {
        String stored = CallerEventIds.stored("u-alice", CALLER_ID);
        assertThat(CallerEventIds.stored("u-alice", CALLER_ID)).isEqualTo(stored);
        assertThat(CallerEventIds.stored("u-alice", CALLER_ID.toUpperCase())).isEqualTo(stored);
        UUID u = UUID.fromString(stored);
        assertThat(u.version()).isEqualTo(5);
        assertThat(u.variant()).isEqualTo(2);
        assertThat(stored).isNotEqualTo(CALLER_ID);
    }

    @Test
    void storedId_isPinned_soThatResendsAfterAnUpgradeStillDedup() {
        // The derivation is a contract: a resend months later must map to the id the ledger already holds.
        // Values from Python's uuid.uuid5 with the same namespace and names.
        assertThat(CallerEventIds.userNamespace("u-alice")).hasToString("bb0c2812-df4d-5c58-ba7b-5614c92b87f5");
        assertThat(CallerEventIds.stored("u-alice", CALLER_ID)).isEqualTo("5ff79227-d7df-5726-b399-d966be4f27d5");
    }

    @Test
    void aCallerIdThatIsNotAUuid_isRefused() {
        assertThatThrownBy(() -> CallerEventIds.stored("u-alice", "not-a-uuid")).isInstanceOf(IllegalArgumentException.class);
    }
}
