package dev.tokenmeter.local;

import java.io.PrintStream;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/** Prints a SQL result as an aligned text table — what finance would see in psql. */
final class SqlReport {

    private SqlReport() {
    }

    static int print(Connection connection, PrintStream out, String sql, Object... params) throws SQLException {
        try (PreparedStatement statement = connection.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) {
                statement.setObject(i + 1, params[i]);
            }
            try (ResultSet rs = statement.executeQuery()) {
                ResultSetMetaData meta = rs.getMetaData();
                int columns = meta.getColumnCount();
                List<String[]> rows = new ArrayList<>();
                String[] header = new String[columns];
                int[] widths = new int[columns];
                for (int c = 0; c < columns; c++) {
                    header[c] = meta.getColumnLabel(c + 1);
                    widths[c] = header[c].length();
                }
                while (rs.next()) {
                    String[] row = new String[columns];
                    for (int c = 0; c < columns; c++) {
                        Object value = rs.getObject(c + 1);
                        row[c] = value == null ? "" : value instanceof java.math.BigDecimal d ? d.toPlainString() : value.toString();
                        widths[c] = Math.max(widths[c], row[c].length());
                    }
                    rows.add(row);
                }
                printRow(out, header, widths);
                StringBuilder rule = new StringBuilder();
                for (int c = 0; c < columns; c++) {
                    rule.append(c == 0 ? "" : "-+-").append("-".repeat(widths[c]));
                }
                out.println(rule);
                rows.forEach(r -> printRow(out, r, widths));
                out.println("(" + rows.size() + (rows.size() == 1 ? " row)" : " rows)"));
                return rows.size();
            }
        }
    }

    private static void printRow(PrintStream out, String[] cells, int[] widths) {
        StringBuilder sb = new StringBuilder();
        for (int c = 0; c < cells.length; c++) {
            sb.append(c == 0 ? "" : " | ").append(String.format("%-" + widths[c] + "s", cells[c]));
        }
        out.println(sb.toString().stripTrailing());
    }
}
