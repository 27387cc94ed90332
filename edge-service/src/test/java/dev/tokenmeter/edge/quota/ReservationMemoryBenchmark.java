package dev.tokenmeter.edge.quota;

import dev.tokenmeter.edge.account.AccountDirectory;
import dev.tokenmeter.testkit.redis.EmbeddedRedisEngine;
import io.lettuce.core.api.sync.RedisCommands;

import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * Issue 20's Redis finding (ADR 0067), a program, not a test: how many bytes of Redis one reserve + settle leaves
 * behind, and how many are still there once the closed records' retention has passed. Bytes are counted, not timed,
 * so a busy box does not change them.
 *
 * <p>Run: {@code bin/benchmark edge-service dev.tokenmeter.edge.quota.ReservationMemoryBenchmark [calls]} (default
 * 20,000, spread over 4 users). It starts the testkit's embedded Redis, makes {@code calls} reserve + settle pairs
 * (the clock moves 1 ms per call), prints {@code used_memory} and the users' reservation keys ({@code MEMORY USAGE}
 * of {@code :res}, {@code :res:gc}, {@code :res:dl}) per call, then moves the clock past the reservation TTL and the
 * closed-record retention's end in turn, makes {@code calls} more (each reserve purges up to
 * {@code QUOTA_SWEEP_BATCH} records whose retention is over) and prints what is left per call made in total.
 */
public final class ReservationMemoryBenchmark {

    private static final List<String> USERS = List.of("mem-1", "mem-2", "mem-3", "mem-4");

    public static void main(String[] args) throws Exception {
        int calls = args.length > 0 ? Integer.parseInt(args[0]) : 20_000;
        AccountDirectory directory = BenchmarkAccounts.anyUserUnlimited();
        UsageBaseline zero = BenchmarkAccounts.noUsage();
        QuotaConfig config = QuotaConfig.defaults().withBackgroundOff();
        MutableClock clock = new MutableClock(Instant.parse("2026-12-10T10:00:00Z"));
        try (EmbeddedRedisEngine redisEngine = EmbeddedRedisEngine.launch();
             QuotaRedis redis = QuotaRedis.connect(redisEngine.uri(), Duration.ofSeconds(5));
             QuotaEngine engine = QuotaEngine.builder().redis(redis.connection()).accountDirectory(directory)
                     .usageBaseline(zero).config(config).clock(clock).build()) {
            RedisCommands<String, String> sync = redis.connection().sync();
            for (String u : USERS) { // counters rebuilt once per user, outside the measurement
                Decision d = engine.reserve(new ReserveRequest(u, "key-" + u, "gpt-4o-mini", 1000, 10));
                engine.settle(d.reservationId(), 900, 9);
            }
            System.out.println("reservation TTL " + config.reservationTtl() + ", expired records kept "
                    + config.reservationRetention() + ", " + calls + " reserve + settle over " + USERS.size() + " users");
            long used0 = usedMemory(sync);
            long keys0 = reservationKeyBytes(sync);
            makeCalls(engine, clock, calls);
            long used1 = usedMemory(sync);
            long keys1 = reservationKeyBytes(sync);
            System.out.printf("right after:               used_memory %+,d B = %.0f B/call; reservation keys %+,d B = %.0f B/call%n",
                    used1 - used0, (used1 - used0) / (double) calls, keys1 - keys0, (keys1 - keys0) / (double) calls);
            for (Duration gap : List.of(config.reservationTtl().plusSeconds(1), config.reservationRetention().plusSeconds(1))) {
                clock.advance(gap);
                makeCalls(engine, clock, calls);
                long used = usedMemory(sync);
                long keys = reservationKeyBytes(sync);
                long made = (long) calls * (gap.equals(config.reservationTtl().plusSeconds(1)) ? 2 : 3);
                System.out.printf("%s later + %,d more calls: used_memory %+,d B = %.0f B per call made; reservation keys %+,d B = %.0f B per call made%n",
                        gap, calls, used - used0, (used - used0) / (double) made, keys - keys0, (keys - keys0) / (double) made);
            }
        }
    }

    private static void makeCalls(QuotaEngine engine, MutableClock clock, int calls) {
        for (int i = 0; i < calls; i++) {
            String u = USERS.get(i % USERS.size());
            Decision d = engine.reserve(new ReserveRequest(u, "key-" + u, "gpt-4o-mini", 1000, 10));
            if (d.reservationId() == null) {
                throw new IllegalStateException("not admitted: " + d);
            }
            engine.settle(d.reservationId(), 900, 9);
            clock.advance(Duration.ofMillis(1));
        }
    }

    private static long usedMemory(RedisCommands<String, String> sync) {
        return sync.info("memory").lines().filter(l -> l.startsWith("used_memory:"))
                .mapToLong(l -> Long.parseLong(l.substring("used_memory:".length()).strip())).findFirst().orElseThrow();
    }

    /** {@code MEMORY USAGE <key> SAMPLES 0} (every element counted) of each user's reservation keys. */
    private static long reservationKeyBytes(RedisCommands<String, String> sync) {
        long sum = 0;
        for (String u : USERS) {
            QuotaKeys k = new QuotaKeys(u);
            for (String key : List.of(k.reservations(), k.purge(), k.deadlines())) {
                Object n = sync.dispatch(io.lettuce.core.protocol.CommandType.MEMORY,
                        new io.lettuce.core.output.IntegerOutput<>(io.lettuce.core.codec.StringCodec.UTF8),
                        new io.lettuce.core.protocol.CommandArgs<>(io.lettuce.core.codec.StringCodec.UTF8)
                                .add("USAGE").addKey(key).add("SAMPLES").add(0));
                sum += n == null ? 0 : (Long) n;
            }
        }
        return sum;
    }
}
