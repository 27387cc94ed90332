package dev.tokenmeter.local.load;

import dev.tokenmeter.testkit.csv.CsvTable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Draws a samples CSV ({@link Sampler}) as one self-contained HTML page: one small inline-SVG line chart per column
 * over time (the {@code elapsed_s} column, else the row number), each with its name, the time axis' first and last
 * value, the value axis' min and max and the last value, so a person sees at a glance whether anything grows. No
 * script, no stylesheet link, nothing fetched: the page opens offline and can sit next to BENCHMARKS.md. Missing or
 * non-numeric values break the line (a gap, not a drop to zero); a constant series is drawn as a level line in the
 * middle. The markup is well-formed XML (XHTML syntax), so a test can parse it.
 *
 * <p>{@code Charts <samples.csv> <charts.html> [title]} writes the page from a file.
 */
public final class Charts {

    static final String TIME_COLUMN = "elapsed_s";
    private static final int WIDTH = 380;
    private static final int HEIGHT = 150;
    private static final int LEFT = 64;
    private static final int RIGHT = 10;
    private static final int TOP = 22;
    private static final int BOTTOM = 26;

    private Charts() {
    }

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: Charts <samples.csv> <charts.html> [title]");
            System.exit(2);
        }
        Path csv = Path.of(args[0]);
        write(CsvTable.read(csv), args.length > 2 ? args[2] : csv.getFileName().toString(), Path.of(args[1]));
    }

    public static void write(CsvTable table, String title, Path html) {
        try {
            Files.writeString(html, html(table, title), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + html, e);
        }
    }

    /** The columns that get a chart: all but {@code time} and the time axis. */
    static List<String> chartedColumns(CsvTable table) {
        return table.columns().stream().filter(c -> !c.equals("time") && !c.equals(TIME_COLUMN)).toList();
    }

    public static String html(CsvTable table, String title) {
        double[] x = xValues(table);
        StringBuilder out = new StringBuilder();
        out.append("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n")
                .append("<meta charset=\"utf-8\"/>\n<title>").append(escape(title)).append("</title>\n")
                .append("<style>body{font:13px sans-serif;margin:16px}div.c{display:inline-block;margin:4px}"
                        + "svg text{font:11px sans-serif}</style>\n</head>\n<body>\n<h1>")
                .append(escape(title)).append("</h1>\n<p>")
                .append(table.rows().size()).append(" samples; x axis: ")
                .append(table.columns().contains(TIME_COLUMN) ? "seconds since the start" : "sample number")
                .append(".</p>\n");
        boolean timed = table.columns().contains(TIME_COLUMN);
        for (String column : chartedColumns(table)) {
            chart(out, column, x, timed, table.numbers(column));
        }
        out.append("</body>\n</html>\n");
        return out.toString();
    }

    private static double[] xValues(CsvTable table) {
        if (table.columns().contains(TIME_COLUMN)) {
            return table.numbers(TIME_COLUMN);
        }
        double[] x = new double[table.rows().size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = i;
        }
        return x;
    }

    private static void chart(StringBuilder out, String column, double[] x, boolean timed, double[] y) {
        double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY;
        double yMin = Double.POSITIVE_INFINITY, yMax = Double.NEGATIVE_INFINITY;
        double lastY = Double.NaN;
        int missing = 0;
        for (int i = 0; i < y.length; i++) {
            if (!Double.isFinite(x[i]) || !Double.isFinite(y[i])) {
                missing++;
                continue;
            }
            xMin = Math.min(xMin, x[i]);
            xMax = Math.max(xMax, x[i]);
            yMin = Math.min(yMin, y[i]);
            yMax = Math.max(yMax, y[i]);
            lastY = y[i];
        }
        out.append("<div class=\"c\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(WIDTH)
                .append("\" height=\"").append(HEIGHT).append("\" viewBox=\"0 0 ").append(WIDTH).append(' ').append(HEIGHT)
                .append("\" role=\"img\" data-column=\"").append(escape(column)).append("\">\n<title>").append(escape(column))
                .append("</title>\n<text x=\"").append(LEFT).append("\" y=\"14\" font-weight=\"bold\">").append(escape(column))
                .append("</text>\n");
        int plotRight = WIDTH - RIGHT;
        int plotBottom = HEIGHT - BOTTOM;
        out.append("<rect x=\"").append(LEFT).append("\" y=\"").append(TOP).append("\" width=\"").append(plotRight - LEFT)
                .append("\" height=\"").append(plotBottom - TOP).append("\" fill=\"none\" stroke=\"#bbb\"/>\n");
        if (Double.isNaN(lastY)) {
            out.append("<text x=\"").append(LEFT + 8).append("\" y=\"").append((TOP + plotBottom) / 2)
                    .append("\">no values</text>\n</svg></div>\n");
            return;
        }
        // a constant series (or a single point) gets a range around it, drawn as a level line in the middle
        double yLo = yMin, yHi = yMax;
        if (yHi == yLo) {
            double pad = yLo == 0 ? 1 : Math.abs(yLo) * 0.05;
            yLo -= pad;
            yHi += pad;
        }
        double xLo = xMin, xHi = xMax == xMin ? xMin + 1 : xMax;
        label(out, LEFT - 4, TOP + 4, "end", num(yMax));
        label(out, LEFT - 4, plotBottom, "end", num(yMin));
        label(out, LEFT, HEIGHT - 8, "start", timed ? num(xMin) + " s" : "#" + num(xMin));
        label(out, plotRight, HEIGHT - 8, "end", timed ? num(xMax) + " s" : "#" + num(xMax));
        label(out, plotRight, 14, "end", "last " + num(lastY) + (missing > 0 ? ", " + missing + " missing" : ""));
        List<String> run = new ArrayList<>();
        for (int i = 0; i <= y.length; i++) {
            boolean ok = i < y.length && Double.isFinite(x[i]) && Double.isFinite(y[i]);
            if (ok) {
                double px = LEFT + (x[i] - xLo) / (xHi - xLo) * (plotRight - LEFT);
                double py = plotBottom - (y[i] - yLo) / (yHi - yLo) * (plotBottom - TOP);
                run.add(String.format(Locale.ROOT, "%.1f,%.1f", px, py));
            } else if (!run.isEmpty()) {
                if (run.size() == 1) {
                    String[] p = run.getFirst().split(",");
                    out.append("<circle cx=\"").append(p[0]).append("\" cy=\"").append(p[1])
                            .append("\" r=\"1.5\" fill=\"#1f5fbf\"/>\n");
                } else {
                    out.append("<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"1.2\" points=\"")
                            .append(String.join(" ", run)).append("\"/>\n");
                }
                run.clear();
            }
        }
        out.append("</svg></div>\n");
    }

    private static void label(StringBuilder out, int x, int y, String anchor, String text) {
        out.append("<text x=\"").append(x).append("\" y=\"").append(y).append("\" text-anchor=\"").append(anchor)
                .append("\">").append(escape(text)).append("</text>\n");
    }

    static String num(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return String.format(Locale.ROOT, "%d", (long) v);
        }
        return String.format(Locale.ROOT, "%.4g", v);
    }

    static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
