package dev.tokenmeter.edge.auth;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class BearerTokenTest {

    @Test
    void takesTheTokenOfABearerHeaderOnly() {
        assertThat(BearerToken.from("Bearer tm_abc")).isEqualTo("tm_abc");
        assertThat(BearerToken.from("bearer  tm_abc ")).isEqualTo("tm_abc");
        assertThat(BearerToken.from("Bearer ")).isNull();
        assertThat(BearerToken.from("Basic xyz")).isNull();
        assertThat(BearerToken.from(null)).isNull();
    }
}
