package dev.tokenmeter.testkit;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class BackendTest {

    private static Backend from(Map<String, String> properties, Map<String, String> env) {
        return Backend.from(properties::get, env::get);
    }

    @Test
    void defaultsToEmbeddedWhenNothingIsSet() {
        assertThat(from(Map.of(), Map.of())).isEqualTo(Backend.EMBEDDED);
    }

    @Test
    void blankValuesCountAsUnset() {
        assertThat(from(Map.of(Backend.PROPERTY, " "), Map.of(Backend.ENV, ""))).isEqualTo(Backend.EMBEDDED);
    }

    @Test
    void systemPropertyWinsOverEnvironment() {
        assertThat(from(Map.of(Backend.PROPERTY, "external"), Map.of(Backend.ENV, "containers")))
                .isEqualTo(Backend.EXTERNAL);
    }

    @Test
    void environmentIsUsedWithoutProperty() {
        assertThat(from(Map.of(), Map.of(Backend.ENV, "CONTAINERS"))).isEqualTo(Backend.CONTAINERS);
    }

    @Test
    void parsingIgnoresCaseAndSurroundingSpace() {
        assertThat(from(Map.of(Backend.PROPERTY, " Embedded "), Map.of())).isEqualTo(Backend.EMBEDDED);
    }

    @Test
    void unknownValueNamesTheKeyAndTheAllowedValues() {
        assertThatThrownBy(() -> from(Map.of(Backend.PROPERTY, "docker"), Map.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tokenmeter.test.backend='docker'")
                .hasMessageContaining("embedded, containers, external");
        assertThatThrownBy(() -> from(Map.of(), Map.of(Backend.ENV, "auto")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("TOKENMETER_TEST_BACKEND='auto'");
    }

    @Test
    void fromEnvironmentReadsTheSystemProperty() {
        String before = System.getProperty(Backend.PROPERTY);
        try {
            System.setProperty(Backend.PROPERTY, "external");
            assertThat(Backend.fromEnvironment()).isEqualTo(Backend.EXTERNAL);
        } finally {
            if (before == null) {
                System.clearProperty(Backend.PROPERTY);
            } else {
                System.setProperty(Backend.PROPERTY, before);
            }
        }
    }
}
