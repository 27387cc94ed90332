package dev.tokenmeter.testkit.csv;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The samples' CSV file (RFC 4180; the load program's samples, the usage API's CSV in tests): a header row naming the columns, then one row per sample, CRLF line ends, a
 * field quoted when it holds a comma, a double quote, CR or LF, with its quotes doubled. {@link #append} writes the
 * header only into an empty (or new) file, so a run that appends to its own file after a restart does not repeat
 * it; a missing value is an empty field. {@link #read} parses such a file back, for the charts.
 */
public record CsvTable(List<String> columns, List<List<String>> rows) {

    public CsvTable {
        columns = List.copyOf(columns);
        rows = rows.stream().map(List::copyOf).toList();
    }

    /** Appends one row, values taken by column name (absent or null = empty); writes the header first into an empty file. */
    public static void append(Path file, List<String> columns, Map<String, ?> values) {
        StringBuilder out = new StringBuilder();
        try {
            if (!Files.exists(file) || Files.size(file) == 0) {
                line(out, columns);
            }
            line(out, columns.stream().map(c -> values.get(c) == null ? "" : String.valueOf(values.get(c))).toList());
            Files.writeString(file, out, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND,
                    StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to " + file, e);
        }
    }

    public static void line(StringBuilder out, Collection<String> fields) {
        boolean first = true;
        for (String f : fields) {
            if (!first) {
                out.append(',');
            }
            first = false;
            out.append(quote(Objects.requireNonNull(f)));
        }
        out.append("\r\n");
    }

    public static String quote(String field) {
        if (field.indexOf(',') < 0 && field.indexOf('"') < 0 && field.indexOf('\r') < 0 && field.indexOf('\n') < 0) {
            return field;
        }
        return '"' + field.replace("\"", "\"\"") + '"';
    }

    public static CsvTable read(Path file) {
        try {
            return parse(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /** Parses RFC 4180 text (LF line ends accepted too); the first record is the header. */
    public static CsvTable parse(String text) {
        List<List<String>> records = new ArrayList<>();
        List<String> record = new ArrayList<>();
        StringBuilder field = new StringBuilder();
        boolean quoted = false;
        boolean any = false;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (quoted) {
                if (c == '"' && i + 1 < text.length() && text.charAt(i + 1) == '"') {
                    field.append('"');
                    i++;
                } else if (c == '"') {
                    quoted = false;
                } else {
                    field.append(c);
                }
            } else if (c == '"') {
                quoted = true;
                any = true;
            } else if (c == ',') {
                record.add(field.toString());
                field.setLength(0);
                any = true;
            } else if (c == '\r' || c == '\n') {
                if (c == '\r' && i + 1 < text.length() && text.charAt(i + 1) == '\n') {
                    i++;
                }
                record.add(field.toString());
                records.add(record);
                record = new ArrayList<>();
                field.setLength(0);
                any = false;
            } else {
                field.append(c);
                any = true;
            }
        }
        if (quoted) {
            throw new IllegalArgumentException("CSV ends inside a quoted field");
        }
        if (any || field.length() > 0) {
            record.add(field.toString());
            records.add(record);
        }
        if (records.isEmpty()) {
            throw new IllegalArgumentException("CSV has no header row");
        }
        List<String> header = records.getFirst();
        for (int r = 1; r < records.size(); r++) {
            if (records.get(r).size() != header.size()) {
                throw new IllegalArgumentException("CSV row " + r + " has " + records.get(r).size() + " fields, the header "
                        + header.size());
            }
        }
        return new CsvTable(header, records.subList(1, records.size()));
    }

    /** A column's values as numbers, NaN where a field is empty or not a number. */
    public double[] numbers(String column) {
        int i = columns.indexOf(column);
        if (i < 0) {
            throw new IllegalArgumentException("no column " + column + " in " + columns);
        }
        double[] out = new double[rows.size()];
        for (int r = 0; r < rows.size(); r++) {
            try {
                out[r] = Double.parseDouble(rows.get(r).get(i).strip());
            } catch (NumberFormatException notANumber) {
                out[r] = Double.NaN;
            }
        }
        return out;
    }
}
