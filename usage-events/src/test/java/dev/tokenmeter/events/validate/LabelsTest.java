package dev.tokenmeter.events.validate;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.validate.Labels.InvalidLabelsException;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.StringJoiner;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Issue 17 (ADR 0078): every bound of the x-tokenmeter-tags header, the labels map and the project, on both sides. */
class LabelsTest {

    @Test
    void parsesTheHeaderWithKeysSortedAndBlanksIgnored() {
        assertThat(Labels.parseHeader("feature=chat,customer=acme"))
                .containsExactly(Map.entry("customer", "acme"), Map.entry("feature", "chat"));
        assertThat(Labels.parseHeader(" feature = chat , customer=acme ")).hasSize(2).containsEntry("feature", "chat");
        assertThat(Labels.parseHeader(null)).isEmpty();
        assertThat(Labels.parseHeader("  ")).isEmpty();
        // The first '=' splits; a second one is in the value, where '=' is not allowed.
        assertThatThrownBy(() -> Labels.parseHeader("a=x=y")).hasMessageContaining("value of label 'a'");
    }

    @Test
    void countAtMostEight() {
        assertThat(Labels.parseHeader(header(8))).hasSize(8);
        assertThatThrownBy(() -> Labels.parseHeader(header(9))).isInstanceOf(InvalidLabelsException.class)
                .hasMessageContaining("at most 8 labels").hasMessageContaining("'k8'");
        assertThat(Labels.problem("labels", labels(8))).isNull();
        assertThat(Labels.problem("labels", labels(9))).contains("at most 8 labels, got 9");
    }

    @Test
    void keyLengthAlphabetAndFirstLetter() {
        String k32 = "k" + "x".repeat(31);
        assertThat(Labels.parseHeader(k32 + "=v")).containsKey(k32);
        assertThat(Labels.parseHeader("a=v")).containsKey("a");
        assertThat(Labels.parseHeader("a0_.-z=v")).containsKey("a0_.-z");
        for (String bad : List.of(k32 + "y", "", "0a", "_a", "Feature", "feat ure", "feat:ure", "fé")) {
            assertThatThrownBy(() -> Labels.parseHeader(bad + "=v")).as(bad).isInstanceOf(InvalidLabelsException.class)
                    .hasMessageContaining("label key").hasMessageContaining("x-tokenmeter-tags");
        }
        assertThat(Labels.problem("labels", Map.of("Bad", "v"))).contains("label key 'Bad'");
    }

    @Test
    void valueLengthAndAlphabet() {
        String v64 = "V".repeat(64);
        assertThat(Labels.parseHeader("k=" + v64)).containsEntry("k", v64);
        assertThat(Labels.parseHeader("k=A-z_0.9:x@y/z")).containsEntry("k", "A-z_0.9:x@y/z");
        for (String bad : List.of(v64 + "V", "", "a b", "a,b", "ü", "a;b", "a=b", "a\"b")) {
            String header = "k=" + bad;
            if (bad.equals("a,b")) {
                // The comma splits: "b" is no key=value item.
                assertThatThrownBy(() -> Labels.parseHeader(header)).isInstanceOf(InvalidLabelsException.class)
                        .hasMessageContaining("must be key=value");
                continue;
            }
            assertThatThrownBy(() -> Labels.parseHeader(header)).as(bad).isInstanceOf(InvalidLabelsException.class)
                    .hasMessageContaining("value of label 'k'");
        }
        assertThat(Labels.problem("labels", Map.of("k", "x y"))).contains("value of label 'k'");
    }

    @Test
    void noDuplicatesAndEveryItemIsKeyValue() {
        assertThatThrownBy(() -> Labels.parseHeader("feature=chat,feature=search"))
                .isInstanceOf(InvalidLabelsException.class).hasMessageContaining("'feature' is given twice");
        assertThatThrownBy(() -> Labels.parseHeader("feature")).hasMessageContaining("must be key=value");
        assertThatThrownBy(() -> Labels.parseHeader("feature=chat,")).hasMessageContaining("must be key=value");
        assertThatThrownBy(() -> Labels.parseHeader(",feature=chat")).hasMessageContaining("must be key=value");
    }

    @Test
    void headerAtMostOneKiB() {
        // 8 labels at their longest make 8 x (32 + 1 + 64) + 7 = 783 characters; blanks (ignored) fill up to 1 KiB.
        String eight = header(8);
        String at = eight + " ".repeat(Labels.HEADER_MAX_CHARS - eight.length());
        assertThat(at).hasSize(1024);
        assertThat(Labels.parseHeader(at)).hasSize(8);
        assertThatThrownBy(() -> Labels.parseHeader(at + " ")).isInstanceOf(InvalidLabelsException.class)
                .hasMessageContaining("at most 1024 characters, got 1025");
    }

    @Test
    void projectBounds() {
        assertThat(Labels.projectProblem("project", null)).isNull();
        assertThat(Labels.projectProblem("project", "p")).isNull();
        assertThat(Labels.projectProblem("project", "P".repeat(64))).isNull();
        assertThat(Labels.projectProblem("project", "Support-Bot_2.x")).isNull();
        for (String bad : List.of("", "P".repeat(65), "a b", "a/b", "a:b", "é")) {
            assertThat(Labels.projectProblem("project", bad)).as(bad).contains("1-64 characters of [A-Za-z0-9._-]");
        }
    }

    @Test
    void theValidatorAppliesTheSameBounds() {
        Instant t = Instant.parse("2026-11-05T10:00:00Z");
        UsageEvent ok = UsageEvent.newBuilder()
                .setEventId(UUID.randomUUID().toString()).setOccurredAt(t).setReceivedAt(t)
                .setTenantId("t-1").setUserId("u-1").setKeySource(KeySource.SERVICE_CREDIT)
                .setModel("gpt-4o-mini").setEndpoint("/v1/chat/completions").setOutcome(Outcome.SUCCEEDED)
                .setProject("support-bot").setLabels(Map.of("feature", "chat"))
                .build();
        assertThat(UsageEventValidator.problems(ok)).isEmpty();
        assertThat(UsageEventValidator.problems(UsageEvent.newBuilder(ok).setProject("a b").build()))
                .singleElement().asString().startsWith("project must be");
        assertThat(UsageEventValidator.problems(UsageEvent.newBuilder(ok).setLabels(labels(9)).build()))
                .singleElement().asString().contains("at most 8 labels");
    }

    private static String header(int n) {
        StringJoiner j = new StringJoiner(",");
        labels(n).forEach((k, v) -> j.add(k + "=" + v));
        return j.toString();
    }

    private static Map<String, String> labels(int n) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            m.put("k" + i, "v" + i);
        }
        return m;
    }
}
