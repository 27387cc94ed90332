package dev.tokenmeter.testkit.csv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CsvTableTest {

    @TempDir
    Path dir;

    @Test
    void quotesOnlyWhatRfc4180Requires() {
        assertThat(CsvTable.quote("plain 1.5")).isEqualTo("plain 1.5");
        assertThat(CsvTable.quote("a,b")).isEqualTo("\"a,b\"");
        assertThat(CsvTable.quote("say \"hi\"")).isEqualTo("\"say \"\"hi\"\"\"");
        assertThat(CsvTable.quote("two\nlines")).isEqualTo("\"two\nlines\"");
        assertThat(CsvTable.quote("cr\r")).isEqualTo("\"cr\r\"");
        assertThat(CsvTable.quote("")).isEmpty();
    }

    @Test
    void writesTheHeaderOnceAndRowsWithCrlf() throws Exception {
        Path file = dir.resolve("s.csv");
        List<String> cols = List.of("time", "status, 429", "note");
        CsvTable.append(file, cols, Map.of("time", "t1", "status, 429", 3, "note", "ok"));
        Map<String, Object> second = new HashMap<>();
        second.put("time", "t2");
        second.put("note", null);
        CsvTable.append(file, cols, second);

        assertThat(Files.readString(file)).isEqualTo("time,\"status, 429\",note\r\nt1,3,ok\r\nt2,,\r\n");
    }

    @Test
    void readsBackWhatItWrote() {
        Path file = dir.resolve("r.csv");
        List<String> cols = List.of("a", "b");
        String awkward = "x,\"y\"\r\nz";
        CsvTable.append(file, cols, Map.of("a", awkward, "b", "1"));
        CsvTable.append(file, cols, Map.of("a", "", "b", "2.5"));

        CsvTable t = CsvTable.read(file);
        assertThat(t.columns()).containsExactly("a", "b");
        assertThat(t.rows()).containsExactly(List.of(awkward, "1"), List.of("", "2.5"));
        assertThat(t.numbers("b")).containsExactly(1, 2.5);
        assertThat(t.numbers("a")[1]).isNaN();
    }

    @Test
    void rejectsRaggedRowsAndAnOpenQuote() {
        assertThatThrownBy(() -> CsvTable.parse("a,b\r\n1\r\n")).hasMessageContaining("row 1 has 1 fields");
        assertThatThrownBy(() -> CsvTable.parse("a\r\n\"open\r\n")).hasMessageContaining("quoted");
        assertThat(CsvTable.parse("a,b\n1,2\n").rows()).containsExactly(List.of("1", "2"));
    }
}
