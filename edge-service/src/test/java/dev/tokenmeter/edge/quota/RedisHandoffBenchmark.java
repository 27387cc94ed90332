package dev.tokenmeter.edge.quota;

import dev.tokenmeter.testkit.support.FreePorts;
import io.lettuce.core.RedisClient;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import org.HdrHistogram.Histogram;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * Benchmark (issue 15, ADR 0065) — not a test. Is the edge's Redis client worth replacing? The edge calls Redis
 * from a virtual thread through Lettuce: the command is handed to Lettuce's event loop, written there, and the reply
 * comes back through a future that unparks the caller — two thread hand-offs per call. The alternative measured here
 * is a plain blocking socket per virtual thread speaking RESP itself: the caller writes, and its read parks it on the
 * JDK's poller until the reply is in.
 *
 * <p>Both run the same EVALSHA (the peer gateway's reserve: a GET and an INCRBY on one key) against one
 * redis-server started here on a free loopback port, from {@code c} virtual threads (each with its own connection
 * for the socket client; Lettuce shares its one connection, as the edge does), for {@code SECONDS} per phase, in
 * rounds that alternate which client goes first. Reported per phase: calls/s, latency p50/p99 and this JVM's CPU per
 * call (process CPU time over calls; Redis's CPU is the same for both and not counted).
 *
 * <p>Run: {@code bin/benchmark edge-service dev.tokenmeter.edge.quota.RedisHandoffBenchmark [seconds] [rounds]}
 * (defaults 3 and 3; concurrency levels {@code -Dhandoff.concurrency=1,16}).
 */
public final class RedisHandoffBenchmark {

    private static final String SCRIPT = "local used = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
            + "if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end\n"
            + "redis.call('INCRBY', KEYS[1], ARGV[1])\nreturn 1\n";
    private static final long MAX_CALLS_PER_PHASE = 5_000_000;

    public static void main(String[] args) throws Exception {
        long seconds = args.length > 0 ? Long.parseLong(args[0]) : 3;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int[] levels = java.util.Arrays.stream(System.getProperty("handoff.concurrency", "1,16").split(","))
                .mapToInt(Integer::parseInt).toArray();
        int port = FreePorts.pick();
        Process server = new ProcessBuilder(System.getProperty("quota.bench.redis-server", "redis-server"),
                "--port", Integer.toString(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        RedisClient client = RedisClient.create("redis://127.0.0.1:" + port);
        try {
            org.awaitility.Awaitility.await("redis-server listens on " + port).atMost(java.time.Duration.ofSeconds(10))
                    .until(() -> FreePorts.accepts("127.0.0.1", port, 200));
            StatefulRedisConnection<String, String> connection = client.connect();
            RedisCommands<String, String> sync = connection.sync();
            String sha = sync.scriptLoad(SCRIPT);
            String[] keys = {"{bench}:credit"};
            Supplier<Call> lettuce = () -> () -> {
                Long r = sync.evalsha(sha, ScriptOutputType.INTEGER, keys, "1", "1000000000000000000");
                if (r == null || r != 1L) {
                    throw new IllegalStateException("script refused: " + r);
                }
            };
            Supplier<Call> socket = () -> new RespCall(port, sha);
            System.out.printf("RedisHandoffBenchmark: %d s per phase, %d rounds, concurrency %s, %d cores%n", seconds, rounds,
                    java.util.Arrays.toString(levels), Runtime.getRuntime().availableProcessors());
            // Warm-up: both clients, every level.
            for (int c : levels) {
                phase(lettuce, c, Math.max(2, seconds));
                phase(socket, c, Math.max(2, seconds));
            }
            for (int c : levels) {
                List<Double> cpuRatios = new ArrayList<>();
                List<Double> p50Ratios = new ArrayList<>();
                for (int round = 1; round <= rounds; round++) {
                    boolean lettuceFirst = round % 2 == 1;
                    Result a = phase(lettuceFirst ? lettuce : socket, c, seconds);
                    Result b = phase(lettuceFirst ? socket : lettuce, c, seconds);
                    Result l = lettuceFirst ? a : b;
                    Result s = lettuceFirst ? b : a;
                    System.out.printf("c=%-3d round %d (%s first): lettuce %,9.0f/s p50 %6.1f p99 %7.1f µs CPU %5.1f µs/call"
                                    + " | socket %,9.0f/s p50 %6.1f p99 %7.1f µs CPU %5.1f µs/call | socket÷lettuce CPU %.2f p50 %.2f%n",
                            c, round, lettuceFirst ? "lettuce" : "socket", l.perSec, l.p50, l.p99, l.cpuPerCall,
                            s.perSec, s.p50, s.p99, s.cpuPerCall, s.cpuPerCall / l.cpuPerCall, s.p50 / l.p50);
                    cpuRatios.add(s.cpuPerCall / l.cpuPerCall);
                    p50Ratios.add(s.p50 / l.p50);
                }
                System.out.printf("c=%-3d median of the rounds' ratios socket÷lettuce: CPU per call %.2f, p50 %.2f%n", c,
                        median(cpuRatios), median(p50Ratios));
            }
            connection.close();
        } finally {
            client.shutdown();
            server.destroy();
        }
    }

    interface Call {
        void run() throws Exception;
    }

    record Result(double perSec, double p50, double p99, double cpuPerCall) {}

    private static Result phase(Supplier<Call> calls, int c, long seconds) throws Exception {
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        Histogram h = new Histogram(60_000_000_000L, 3);
        AtomicLong done = new AtomicLong();
        List<Call> perThread = new ArrayList<>();
        for (int i = 0; i < c; i++) {
            perThread.add(calls.get());
        }
        CountDownLatch finished = new CountDownLatch(c);
        long cpu0 = os.getProcessCpuTime();
        long start = System.nanoTime();
        long end = start + seconds * 1_000_000_000L;
        List<Thread> threads = new ArrayList<>();
        for (Call call : perThread) {
            threads.add(Thread.ofVirtual().start(() -> {
                Histogram mine = new Histogram(60_000_000_000L, 3);
                try {
                    while (System.nanoTime() < end && done.get() < MAX_CALLS_PER_PHASE) {
                        long t0 = System.nanoTime();
                        call.run();
                        mine.recordValue(System.nanoTime() - t0);
                        done.incrementAndGet();
                    }
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                } finally {
                    synchronized (h) {
                        h.add(mine);
                    }
                    finished.countDown();
                }
            }));
        }
        finished.await();
        long wall = System.nanoTime() - start;
        long cpu = os.getProcessCpuTime() - cpu0;
        for (Call call : perThread) {
            if (call instanceof AutoCloseable closeable) {
                closeable.close();
            }
        }
        long n = done.get();
        return new Result(n * 1e9 / wall, h.getValueAtPercentile(50) / 1000.0, h.getValueAtPercentile(99) / 1000.0,
                cpu / 1000.0 / n);
    }

    /** One connection, blocking, RESP by hand: {@code EVALSHA sha 1 key 1 limit}, integer reply. */
    static final class RespCall implements Call, AutoCloseable {
        private final Socket socket;
        private final OutputStream out;
        private final InputStream in;
        private final byte[] request;

        RespCall(int port, String sha) {
            try {
                socket = new Socket();
                socket.setTcpNoDelay(true);
                socket.connect(new InetSocketAddress("127.0.0.1", port), 2_000);
                out = socket.getOutputStream();
                in = new BufferedInputStream(socket.getInputStream(), 8192);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            request = command("EVALSHA", sha, "1", "{bench}:credit", "1", "1000000000000000000");
        }

        private static byte[] command(String... parts) {
            StringBuilder b = new StringBuilder().append('*').append(parts.length).append("\r\n");
            for (String p : parts) {
                b.append('$').append(p.getBytes(StandardCharsets.UTF_8).length).append("\r\n").append(p).append("\r\n");
            }
            return b.toString().getBytes(StandardCharsets.UTF_8);
        }

        @Override
        public void run() throws IOException {
            out.write(request);
            out.flush();
            int type = in.read();
            long value = 0;
            for (int ch = in.read(); ch != '\r'; ch = in.read()) {
                if (ch < 0) {
                    throw new IOException("connection closed");
                }
                value = value * 10 + (ch - '0');
            }
            if (in.read() != '\n' || type != ':' || value != 1) {
                throw new IOException("unexpected reply type " + (char) type + " value " + value);
            }
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    private static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }
}
