package dev.tokenmeter.edge;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * wrk (Debian's, a C load generator) for {@link EdgeBenchmark}: a closed loop of {@code connections} keep-alive
 * connections POSTing one body for a fixed time, run as {@code wrk -t T -c C -d Ns --latency -s post.lua URL}, its
 * printed report parsed. wrk prints times with a unit each ({@code us}, {@code ms}, {@code s}, {@code m}, {@code h});
 * they are parsed to microseconds exactly as printed (two decimals). Its own CPU is read from the shell that ran it
 * (the children's times in {@code /proc/<shell>/stat} once wrk was waited for).
 *
 * <p>wrk 4's printed distribution is not the raw one: before printing it adds, for every latency longer than twice
 * the mean interval between a connection's calls, synthetic samples at that latency minus 1, 2, … intervals (its
 * coordinated-omission correction, {@code stats_correct}). So one stall of the box during a one-connection phase
 * raises the printed p75–p99 far more than its share of the calls; the {@code Max} it prints is raw. So a script
 * made with {@code rawTimes} also times every call itself (LuaJIT's FFI, {@code clock_gettime(CLOCK_MONOTONIC)}, from
 * wrk building the request to the parsed response) and prints the raw p50, p99 and max at the end; that pairing is
 * exact with one connection per thread only.
 */
final class Wrk {

    private static final Pattern PERCENTILE = Pattern.compile("^\\s*(\\d+(?:\\.\\d+)?)%\\s+(\\S+)\\s*$");
    private static final Pattern LATENCY = Pattern.compile("^\\s*Latency\\s+(\\S+)\\s+(\\S+)\\s+(\\S+)\\s+\\S+\\s*$");
    private static final Pattern REQUESTS = Pattern.compile("^\\s*(\\d+) requests in (\\S+), .*$");
    private static final Pattern NON_2XX = Pattern.compile("^\\s*Non-2xx or 3xx responses: (\\d+)\\s*$");
    private static final Pattern SOCKET_ERRORS = Pattern.compile(
            "^\\s*Socket errors: connect (\\d+), read (\\d+), write (\\d+), timeout (\\d+)\\s*$");
    private static final Pattern RATE = Pattern.compile("^Requests/sec:\\s+(\\S+)\\s*$");
    private static final Pattern TIME = Pattern.compile("^(\\d+(?:\\.\\d+)?)(us|ms|s|m|h)$");
    private static final String CPU_MARK = "@@shell-stat ";
    private static final Pattern RAW = Pattern.compile("^@@raw n=(\\d+) p50=(\\S+) p99=(\\S+) max=(\\S+)\\s*$");
    /** Times every call in the script; {@code done} prints the raw percentiles (one connection per thread only). */
    private static final String RAW_TIMES = """
            local ffi = require("ffi")
            ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } wrk_timespec; int clock_gettime(int, wrk_timespec *); ]]
            local ts = ffi.new("wrk_timespec")
            local function now() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3 end
            local threads = {}
            function setup(thread) table.insert(threads, thread) end
            local t0 = 0
            times = {}
            function request() t0 = now(); return wrk.format() end
            function response(status, headers, body) times[#times + 1] = now() - t0 end
            function done(summary, latency, requests)
              local all = {}
              for _, t in ipairs(threads) do local l = t:get("times"); for i = 1, #l do all[#all + 1] = l[i] end end
              if #all == 0 then return end
              table.sort(all)
              local function p(q) return all[math.max(1, math.ceil(q / 100 * #all))] end
              io.write(string.format("@@raw n=%d p50=%.1f p99=%.1f max=%.1f\\n", #all, p(50), p(99), all[#all]))
            end
            """;

    /** What one wrk run reported; latencies in µs; {@code errors} = non-2xx answers + socket errors of every kind. */
    record Report(long requests, long errors, double seconds, double perSecond, Map<Double, Double> percentilesMicros,
                  double meanMicros, double maxMicros, long cpuNanos, double rawP50Micros, double rawP99Micros, String raw) {

        double p(double percentile) {
            Double v = percentilesMicros.get(percentile);
            if (v == null) {
                throw new IllegalStateException("wrk printed no " + percentile + "% latency:\n" + raw);
            }
            return v;
        }
    }

    private Wrk() {
    }

    /** A {@code post.lua} in {@code dir} that makes wrk POST {@code body} as JSON with {@code Authorization: Bearer key}. */
    static Path script(Path dir, String name, String key, String body, boolean rawTimes) throws IOException {
        if (body.contains("]==]") || key.contains("\"") || key.contains("\\")) {
            throw new IllegalArgumentException("body or key cannot be quoted for Lua");
        }
        String lua = "wrk.method = \"POST\"\n"
                + "wrk.body = [==[" + body + "]==]\n"
                + "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
                + "wrk.headers[\"Accept\"] = \"application/json\"\n"
                + "wrk.headers[\"Authorization\"] = \"Bearer " + key + "\"\n"
                + (rawTimes ? RAW_TIMES : "");
        Path file = dir.resolve(name + ".lua");
        Files.writeString(file, lua, StandardCharsets.UTF_8);
        return file;
    }

    /** Runs wrk for {@code seconds} (killed after {@code seconds} + 30 s), and parses what it printed. */
    static Report run(String url, Path script, int threads, int connections, int seconds) throws IOException, InterruptedException {
        List<String> command = List.of("bash", "-c", "wrk \"$@\"; rc=$?; echo \"" + CPU_MARK + "$(cat /proc/$$/stat)\"; exit $rc",
                "bash", "-t" + threads, "-c" + connections, "-d" + seconds + "s", "--latency", "-s", script.toString(), url);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        byte[] out;
        try (var in = p.getInputStream()) {
            out = in.readAllBytes();
        }
        if (!p.waitFor(seconds + 30L, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("wrk did not finish within " + (seconds + 30) + " s");
        }
        String text = new String(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IllegalStateException("wrk exited with " + p.exitValue() + ":\n" + text);
        }
        return parse(text);
    }

    static Report parse(String text) {
        Map<Double, Double> percentiles = new TreeMap<>();
        long requests = -1;
        long errors = 0;
        double seconds = Double.NaN;
        double rate = Double.NaN;
        double mean = Double.NaN;
        double max = Double.NaN;
        long cpu = 0;
        double rawP50 = Double.NaN;
        double rawP99 = Double.NaN;
        boolean inDistribution = false;
        for (String line : text.split("\n")) {
            Matcher m;
            if (line.strip().equals("Latency Distribution")) {
                inDistribution = true;
            } else if (inDistribution && (m = PERCENTILE.matcher(line)).matches()) {
                percentiles.put(Double.parseDouble(m.group(1)), micros(m.group(2)));
            } else if ((m = LATENCY.matcher(line)).matches()) {
                mean = micros(m.group(1));
                max = micros(m.group(3));
            } else if ((m = REQUESTS.matcher(line)).matches()) {
                inDistribution = false;
                requests = Long.parseLong(m.group(1));
                seconds = micros(m.group(2)) / 1e6;
            } else if ((m = NON_2XX.matcher(line)).matches()) {
                errors += Long.parseLong(m.group(1));
            } else if ((m = SOCKET_ERRORS.matcher(line)).matches()) {
                for (int g = 1; g <= 4; g++) {
                    errors += Long.parseLong(m.group(g));
                }
            } else if ((m = RATE.matcher(line)).matches()) {
                rate = Double.parseDouble(m.group(1));
            } else if ((m = RAW.matcher(line)).matches()) {
                rawP50 = Double.parseDouble(m.group(2));
                rawP99 = Double.parseDouble(m.group(3));
            } else if (line.startsWith(CPU_MARK)) {
                String stat = line.substring(CPU_MARK.length());
                String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                // cutime + cstime (fields 16 and 17): the waited-for children's CPU, i.e. wrk's.
                cpu = (Long.parseLong(f[13]) + Long.parseLong(f[14])) * 1_000_000_000L / 100;
            }
        }
        if (requests < 0 || percentiles.isEmpty() || Double.isNaN(rate)) {
            throw new IllegalStateException("cannot read wrk's report:\n" + text);
        }
        return new Report(requests, errors, seconds, rate, percentiles, mean, max, cpu, rawP50, rawP99, text);
    }

    /** A wrk time ("256.00us", "1.02ms", "2.00s", "1.50m") in microseconds. */
    static double micros(String printed) {
        Matcher m = TIME.matcher(printed.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("not a wrk time: '" + printed + "'");
        }
        double v = Double.parseDouble(m.group(1));
        return switch (m.group(2)) {
            case "us" -> v;
            case "ms" -> v * 1e3;
            case "s" -> v * 1e6;
            case "m" -> v * 60e6;
            case "h" -> v * 3600e6;
            default -> throw new IllegalArgumentException(printed);
        };
    }
}
