package dev.tokenmeter.edge.quota;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.YearMonth;
import org.junit.jupiter.api.Test;

class QuotaKeysTest {

    @Test
    void everyKeyOfAUserSharesItsHashTag() {
        QuotaKeys k = new QuotaKeys("alice");
        YearMonth m = YearMonth.of(2026, 11);
        assertThat(java.util.List.of(k.reservations(), k.deadlines(), k.purge(), k.reserved(), k.rebuildLock(),
                k.settled(m), k.personal(m), k.thresholds(m), k.userRequests(), k.userTokens(), k.keyRequests("k1"), k.keyTokens("k1")))
                .allSatisfy(key -> assertThat(key).startsWith("{u:alice}:"));
        assertThat(k.settled(m)).isEqualTo("{u:alice}:m:2026-11:settled");
    }

    @Test
    void reservationIdCarriesUserMonthAndApiKey() {
        String id = new QuotaKeys("alice").newReservationId(YearMonth.of(2026, 12), "key:7", false);
        QuotaKeys.ReservationId r = QuotaKeys.parse(id);
        assertThat(id).startsWith("{u:alice}:2026-12:r:key:7:");
        assertThat(r.userId()).isEqualTo("alice");
        assertThat(r.month()).isEqualTo(YearMonth.of(2026, 12));
        assertThat(r.local()).isFalse();
        assertThat(r.apiKeyId()).isEqualTo("key:7");
        assertThat(QuotaKeys.parse(new QuotaKeys("bob").newReservationId(YearMonth.of(2026, 1), "k", true)).local()).isTrue();
    }

    /** Issue 21 (ADR 0072): an id decided in Postgres says so, so settle finds it there. */
    @Test
    void anIdDecidedInPostgresCarriesTheFlagD() {
        String id = new QuotaKeys("carol").newReservationId(YearMonth.of(2026, 11), "k1", 'd');
        QuotaKeys.ReservationId r = QuotaKeys.parse(id);
        assertThat(id).startsWith("{u:carol}:2026-11:d:k1:");
        assertThat(r.database()).isTrue();
        assertThat(r.local()).isFalse();
        assertThat(r.apiKeyId()).isEqualTo("k1");
        assertThat(QuotaKeys.parse(new QuotaKeys("bob").newReservationId(YearMonth.of(2026, 1), "k", false)).database()).isFalse();
        assertThatThrownBy(() -> QuotaKeys.parse(id.replace(":d:", ":x:"))).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void idsIssuedBeforeTheApiKeyWasPartOfTheIdStillParse() {
        QuotaKeys.ReservationId r = QuotaKeys.parse("{u:alice}:2026-11:r:" + java.util.UUID.randomUUID());
        assertThat(r.userId()).isEqualTo("alice");
        assertThat(r.month()).isEqualTo(YearMonth.of(2026, 11));
        assertThat(r.apiKeyId()).isNull();
    }

    @Test
    void foreignIdsAreRefusedNamingTheArgument() {
        for (String bad : new String[]{null, "", "abc", "{u:alice}:2026-13:r:" + java.util.UUID.randomUUID(), "{u:alice}:2026-11:x:123",
                "{u:alice}:2026-11:r:{u:bob}:" + java.util.UUID.randomUUID(), "{u:alice}:2026-11:r:k:not-a-uuid"}) {
            assertThatThrownBy(() -> QuotaKeys.parse(bad)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("reservationId");
        }
    }
}
