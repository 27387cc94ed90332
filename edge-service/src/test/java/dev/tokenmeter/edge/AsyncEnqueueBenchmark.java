package dev.tokenmeter.edge;

import dev.tokenmeter.testkit.Backend;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import io.lettuce.core.Range;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.api.sync.RedisCommands;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Issue 19's async number — a program, not a test. One edge wired as EdgeApp wires it (embedded Kafka, quota Redis,
 * Postgres, the fake upstream) taking async jobs with no workers (ASYNC_WORKERS=0: enqueue alone is measured), then
 * per round: jobs accepted (202) per second at {@code concurrency} callers for {@code seconds}, against
 * {@code redis-benchmark ... XADD <stream> * f <value>} on the same Redis with the value the size of one job's
 * stream entry (its fields and values), at the same concurrency. Prints every round and the median of the ratios.
 * {@code bin/benchmark edge-service dev.tokenmeter.edge.AsyncEnqueueBenchmark [rounds] [concurrency] [seconds]}
 */
public final class AsyncEnqueueBenchmark {

    private AsyncEnqueueBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        int concurrency = args.length > 1 ? Integer.parseInt(args[1]) : 16;
        int seconds = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        String stream = "bench:async:" + System.nanoTime();
        try (Engines engines = Engines.create(Backend.EMBEDDED);
             FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("ASYNC_STREAM", stream, "ASYNC_WORKERS", "0",
                     "ASYNC_MAX_QUEUED_PER_TENANT", "10000000"))) {
            EdgeTestBed.User user = bed.newUser(1_000_000_000_000_000L, 1_000_000_000);
            HttpRequest enqueue = bed.sdkRequest("/v1/async/chat/completions", user.key(),
                    // max_tokens bounds the reservation's token estimate: the plan's 10M tokens per minute would
                    // otherwise refuse jobs once a few thousand are reserved (no worker runs them).
                    "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"a benchmark job of a few words\"}]}").build();
            HttpResponse<String> first = bed.client.send(enqueue, HttpResponse.BodyHandlers.ofString());
            if (first.statusCode() != 202) {
                throw new IllegalStateException("priming job: " + first.statusCode() + " " + first.body());
            }
            RedisCommands<String, String> redis = bed.quotaRedis.connection().sync();
            List<StreamMessage<String, String>> entry = redis.xrange(stream, Range.create("-", "+"));
            int entryBytes = entry.get(0).getBody().entrySet().stream().mapToInt(e -> e.getKey().length() + e.getValue().length()).sum();
            System.out.printf("job entry %d bytes (fields and values); %d rounds of %d s at %d callers%n", entryBytes, rounds, seconds, concurrency);
            List<Double> ratios = new ArrayList<>();
            for (int round = 1; round <= rounds; round++) {
                double jobsPerSecond = ResponseCacheBenchmark.callsPerSecond(bed, enqueue, 202, concurrency, seconds);
                double xaddsPerSecond = redisBenchmarkXadd(engines, "bench:xadd:" + round, entryBytes, concurrency);
                redis.del(stream, "bench:xadd:" + round);
                ratios.add(jobsPerSecond / xaddsPerSecond);
                System.out.printf("round %d: enqueued %.0f jobs/s vs redis-benchmark XADD %.0f/s = %.1f %%%n",
                        round, jobsPerSecond, xaddsPerSecond, 100 * jobsPerSecond / xaddsPerSecond);
            }
            System.out.printf("median of ratios: enqueue / redis-benchmark XADD %.1f %% (target >= 50 %%)%n", 100 * ResponseCacheBenchmark.medianOf(ratios));
        }
    }

    /** XADDs per second by {@code redis-benchmark} of one field with a {@code valueBytes} value, at this concurrency. */
    private static double redisBenchmarkXadd(Engines engines, String stream, int valueBytes, int concurrency) throws Exception {
        var redis = engines.redis();
        String value = "v".repeat(valueBytes);
        List<String> command = new ArrayList<>(List.of("redis-benchmark", "-h", redis.host(), "-p", Integer.toString(redis.port())));
        if (!redis.password().isEmpty()) {
            command.addAll(List.of("--user", redis.user(), "-a", redis.password()));
        }
        command.addAll(List.of("-c", Integer.toString(concurrency), "-n", "200000", "-q", "--csv", "XADD", stream, "*", "f", value));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            out = String.join("\n", in.lines().toList());
        }
        p.waitFor();
        for (String line : out.split("\n")) {
            if (line.startsWith("\"XADD")) {
                return Double.parseDouble(line.split("\",\"")[1].replace("\"", ""));
            }
        }
        throw new IllegalStateException("no XADD line from redis-benchmark: " + (redis.password().isEmpty() ? out : out.replace(redis.password(), "***")));
    }
}
