package dev.tokenmeter.local;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.Comparator;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The fault suite's figures as a Markdown table, one row per scenario, in the form of BENCHMARKS.md's fault table
 * (which is refreshed from it): written on every run, a failing one included, to {@code target/fault-figures.md}.
 */
final class FaultFigures {

    static final String HEADER = """
            | scenario | calls | answered by status | fault | ledger caught up after restore | max backlog | ledger vs expected | result |
            |---|---|---|---|---|---|---|---|
            """;

    private final Path file;

    FaultFigures(Path file) {
        this.file = file;
    }

    /** Starts the file afresh: a title naming the run, then the table's header. */
    void begin(Instant runAt, String how) {
        write(String.format("# Fault suite figures%n%nRun at %s, %s.%n%n", runAt, how) + HEADER, false);
    }

    /** Appends the scenario's row (after a header, if the file was not begun). */
    void append(FaultDrill.Result result) {
        if (!Files.exists(file)) {
            write(HEADER, false);
        }
        write(row(result) + "\n", true);
    }

    static String row(FaultDrill.Result r) {
        long expected = r.traffic().sent();
        long ledger = r.verdict().ledgerRows();
        String result = !r.drained() ? "NOT drained" : r.verdict().ok() ? "reconciled" : "NOT reconciled";
        return String.format(Locale.ROOT, "| %s | %,d | %s | %d s | %.1f s | %,d events | %,d %s %,d rows | %s |",
                r.label(), r.traffic().sent(), byStatus(r.traffic().byStatus()), r.faultDuration().toSeconds(),
                r.recovery().toMillis() / 1000.0, r.maxBacklogEvents(), ledger, ledger == expected ? "=" : "≠", expected,
                result);
    }

    /** Most frequent status first: {@code 200: 980, 429: 494, 500: 26}. */
    static String byStatus(Map<Integer, Long> counts) {
        return counts.entrySet().stream()
                .sorted(Map.Entry.<Integer, Long>comparingByValue(Comparator.reverseOrder()).thenComparing(Map.Entry.comparingByKey()))
                .map(e -> String.format(Locale.ROOT, "%d: %,d", e.getKey(), e.getValue()))
                .collect(Collectors.joining(", "));
    }

    private void write(String text, boolean append) {
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            Files.writeString(file, text, StandardOpenOption.CREATE,
                    append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }
}
