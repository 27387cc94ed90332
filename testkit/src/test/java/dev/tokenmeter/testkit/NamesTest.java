package dev.tokenmeter.testkit;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class NamesTest {

    @Test
    void prefixDashSuffixInTheSafeAlphabet() {
        assertThat(Names.unique("usage-events")).matches("usage-events-[a-z0-9]{8}");
    }

    @Test
    void unsafeCharactersAreReplacedAndCaseIsLowered() {
        assertThat(Names.unique("Ledger Writer.IT")).matches("ledger_writer_it-[a-z0-9]{8}");
    }

    @Test
    void longPrefixesAreCutSoDatabaseNamesFitPostgres() {
        String name = Names.unique("x".repeat(100));
        assertThat(name.length()).isLessThanOrEqualTo(63);
        assertThat(name).matches("x{40}-[a-z0-9]{8}");
    }

    @Test
    void namesDoNotRepeat() {
        Set<String> names = new HashSet<>();
        for (int i = 0; i < 10_000; i++) {
            names.add(Names.unique("t"));
        }
        assertThat(names).hasSize(10_000);
    }

    @Test
    void blankPrefixIsRejected() {
        assertThatThrownBy(() -> Names.unique(" ")).isInstanceOf(IllegalArgumentException.class);
    }
}
