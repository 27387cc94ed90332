package dev.tokenmeter.edge.proxy.batch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Hostile batch input files are refused before anything goes upstream (issue 16, ADR 0087). */
class BatchInputTest {

    static String line(String customId, String model) {
        return "{\"custom_id\":\"" + customId + "\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":"
                + "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}";
    }

    private static List<BatchInput.Line> parse(String text) {
        return BatchInput.parse(text.getBytes(StandardCharsets.UTF_8), 10_000, 3);
    }

    @Test
    void readsEachRequestWithItsLineNumberAndModel() {
        List<BatchInput.Line> lines = parse(line("a", "gpt-4o-mini") + "\r\n\n" + line("b", "gpt-4o") + "\n");
        assertThat(lines).extracting(BatchInput.Line::customId).containsExactly("a", "b");
        assertThat(lines).extracting(BatchInput.Line::lineNumber).containsExactly(1, 3);
        assertThat(lines).extracting(BatchInput.Line::model).containsExactly("gpt-4o-mini", "gpt-4o");
    }

    @Test
    void refusesEachKindOfBadInputNamingTheLine() {
        String ok = line("a", "gpt-4o-mini") + "\n";
        record Case(String text, String message) {
        }
        for (Case c : List.of(
                new Case(ok + "not json", "Line 2 of the batch input file is not valid JSON"),
                new Case(ok + "[1,2]", "Line 2 of the batch input file is not a JSON object"),
                new Case(ok + line("a", "gpt-4o"), "Line 2 of the batch input file repeats the custom_id"),
                new Case(ok + line("", "gpt-4o"), "Line 2 of the batch input file needs a custom_id"),
                new Case(ok + line("x".repeat(BatchInput.MAX_CUSTOM_ID_CHARS + 1), "gpt-4o"), "needs a custom_id of 1..512"),
                new Case(ok + line("b", "gpt-4o").replace("POST", "GET"), "needs method POST"),
                new Case(ok + line("b", "gpt-4o").replace("/v1/chat/completions", "/v1/images/generations"), "has a url"),
                new Case(ok + "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":\"x\"}", "needs a body object"),
                new Case(ok + line("b", ""), "needs body.model"),
                new Case("\n\n", "has no requests"),
                new Case(ok + line("b", "m") + "\n" + line("c", "m") + "\n" + line("d", "m"), "more than 3 requests (MAX_BATCH_LINES)"))) {
            assertThatThrownBy(() -> parse(c.text())).as(c.text()).isInstanceOf(BatchInputException.class)
                    .hasMessageContaining(c.message())
                    .satisfies(e -> assertThat(((BatchInputException) e).param()).isEqualTo("file"));
        }
    }

    @Test
    void refusesTooLargeAndNonUtf8Files() {
        byte[] big = (line("a", "gpt-4o-mini") + "\n").repeat(100).getBytes(StandardCharsets.UTF_8);
        assertThatThrownBy(() -> BatchInput.parse(big, 1_000, 1_000)).isInstanceOf(BatchInputException.class)
                .hasMessageContaining("MAX_BATCH_FILE_BYTES");
        assertThatThrownBy(() -> BatchInput.parse(new byte[] {'{', (byte) 0xC3, '}'}, 1_000, 10))
                .isInstanceOf(BatchInputException.class).hasMessageContaining("not UTF-8");
    }
}
