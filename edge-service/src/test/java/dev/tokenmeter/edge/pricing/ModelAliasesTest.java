package dev.tokenmeter.edge.pricing;

import dev.tokenmeter.edge.pricing.ModelAliases.Alias;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Issue 16: how a name a caller sends finds its alias (ADR 0068). */
class ModelAliasesTest {

    private static final Instant T0 = Instant.parse("2025-01-01T00:00:00Z");
    private static final Instant T1 = Instant.parse("2026-01-01T00:00:00Z");

    private static final ModelAliases ALIASES = new ModelAliases(List.of(
            new Alias("gpt-4o-*", T0, "gpt-4o"),
            new Alias("gpt-4o-mini-*", T0, "gpt-4o-mini"),
            new Alias("gpt-4o-mini-2024-07-18", T0, "gpt-4o-mini-exact"),
            new Alias("gpt-4o-mini-2024-07-18", T1, "gpt-4o-mini-2026"),
            new Alias("o3-*", T1, "o3")));

    private static String target(String name, Instant at) {
        return ALIASES.match(name, at).map(Alias::model).orElse(null);
    }

    @Test
    void anExactAliasWinsOverEveryPattern() {
        assertThat(target("gpt-4o-mini-2024-07-18", T0.plusSeconds(1))).isEqualTo("gpt-4o-mini-exact");
    }

    @Test
    void theLongestMatchingPrefixWins() {
        assertThat(target("gpt-4o-mini-2099-01-01", T0)).isEqualTo("gpt-4o-mini");
        assertThat(target("gpt-4o-2024-08-06", T0)).isEqualTo("gpt-4o");
        assertThat(target("gpt-4o-mini", T0)).as("a pattern needs something after its prefix: 'gpt-4o-mini' is matched by gpt-4o-*")
                .isEqualTo("gpt-4o");
        assertThat(target("gpt-4o", T0)).as("the prefix itself is not covered").isNull();
        assertThat(target("gpt-4.1-2025-04-14", T0)).isNull();
    }

    @Test
    void eachAliasIsTheNewestRowInForce() {
        assertThat(target("gpt-4o-mini-2024-07-18", T1.minusMillis(1))).isEqualTo("gpt-4o-mini-exact");
        assertThat(target("gpt-4o-mini-2024-07-18", T1)).isEqualTo("gpt-4o-mini-2026");
        assertThat(target("o3-2025-04-16", T1.minusMillis(1))).as("not yet in force").isNull();
        assertThat(target("o3-2025-04-16", T1)).isEqualTo("o3");
        assertThat(target("gpt-4o-2024-08-06", T0.minusMillis(1))).isNull();
    }

    @Test
    void aStarOnlyEndsAPattern() {
        assertThatThrownBy(() -> new Alias("gpt-*-mini", T0, "m")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Alias("*", T0, "m")).isInstanceOf(IllegalArgumentException.class);
        assertThat(new Alias("gpt-*", T0, "m").isPattern()).isTrue();
    }
}
