package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.csv.CsvTable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

class SamplerTest {

    @TempDir
    Path dir;

    @Test
    void appendsOneRowPerIntervalUnderOneHeader() throws Exception {
        Path csv = dir.resolve("samples.csv");
        AtomicInteger calls = new AtomicInteger();
        try (Sampler sampler = Sampler.builder(csv, Duration.ofMillis(50))
                .source(List.of("calls", "label"), row -> {
                    int n = calls.incrementAndGet();
                    row.put("calls", n);
                    row.put("label", "p99, ms");
                })
                .source(List.of("flaky"), row -> {
                    if (calls.get() % 2 == 0) {
                        throw new IllegalStateException("engine stopped");
                    }
                    row.put("flaky", 7);
                })
                .build()) {
            assertThat(sampler.columns()).containsExactly("time", "elapsed_s", "calls", "label", "flaky");
            sampler.start();
            await("the sampler wrote 4 rows").atMost(Duration.ofSeconds(10)).until(() -> sampler.rows() >= 4);
        }
        String text = Files.readString(csv);
        assertThat(text.split("\r\n")[0]).isEqualTo("time,elapsed_s,calls,label,flaky");
        assertThat(text.indexOf("time,elapsed_s", 1)).as("header once").isEqualTo(-1);

        CsvTable table = CsvTable.read(csv);
        assertThat(table.rows()).hasSizeGreaterThanOrEqualTo(4);
        double[] calls1 = table.numbers("calls");
        double[] elapsed = table.numbers("elapsed_s");
        double[] flaky = table.numbers("flaky");
        for (int i = 0; i < calls1.length; i++) {
            assertThat(calls1[i]).isEqualTo(i + 1);
            assertThat(table.rows().get(i).get(3)).isEqualTo("p99, ms");
            if (i > 0) {
                assertThat(elapsed[i]).as("row %d is at least an interval after the one before", i)
                        .isGreaterThanOrEqualTo(elapsed[i - 1] + 0.045);
            }
            if ((i + 1) % 2 == 0) {
                assertThat(flaky[i]).as("a failed source leaves its column empty").isNaN();
            } else {
                assertThat(flaky[i]).isEqualTo(7);
            }
        }
    }

    @Test
    void appendingToAnExistingFileKeepsItsHeader() throws Exception {
        Path csv = dir.resolve("again.csv");
        for (int run = 0; run < 2; run++) {
            try (Sampler sampler = Sampler.builder(csv, Duration.ofSeconds(10)).source(List.of("x"), row -> row.put("x", 1)).build()) {
                sampler.sampleOnce();
            }
        }
        assertThat(CsvTable.read(csv).rows()).hasSize(2);
        assertThat(Files.readString(csv).split("time,elapsed_s,x", -1)).hasSize(2);
    }

    @Test
    void rejectsAColumnNamedTwiceAndAZeroInterval() {
        assertThatThrownBy(() -> Sampler.builder(dir.resolve("a.csv"), Duration.ofSeconds(1))
                .source(List.of("x"), row -> { }).source(List.of("x"), row -> { }).build())
                .hasMessageContaining("column x named twice");
        assertThatThrownBy(() -> Sampler.builder(dir.resolve("a.csv"), Duration.ZERO)).hasMessageContaining("interval");
    }
}
