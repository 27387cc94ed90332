package dev.tokenmeter.edge.cache;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

class ExpiringCacheTest {

    private final AtomicLong nanos = new AtomicLong(1_000);
    private final ExpiringCache<String, String> cache = new ExpiringCache<>(Duration.ofSeconds(5), 100, nanos::get);

    @Test
    void anEntryIsServedUntilItsTtlEndsThenLoadedAgain() {
        AtomicInteger loads = new AtomicInteger();
        assertThat(cache.get("k", k -> k + loads.incrementAndGet())).isEqualTo("k1");
        nanos.addAndGet(Duration.ofSeconds(5).toNanos() - 1);
        assertThat(cache.get("k", k -> k + loads.incrementAndGet())).isEqualTo("k1");
        nanos.addAndGet(1);
        assertThat(cache.get("k", k -> k + loads.incrementAndGet())).isEqualTo("k2");
        cache.invalidate("k");
        assertThat(cache.get("k", k -> k + loads.incrementAndGet())).isEqualTo("k3");
    }

    /** Issue 4: every call that missed an expired key ran its own query; now they share one. */
    @Test
    void concurrentMissesOfOneKeyShareOneLoad() throws Exception {
        AtomicInteger loads = new AtomicInteger();
        CountDownLatch loading = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        List<Future<String>> results = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            results.add(pool.submit(() -> cache.get("k", k -> {
                loads.incrementAndGet();
                loading.countDown();
                awaitQuietly(release);
                return "v";
            })));
            assertThat(loading.await(10, TimeUnit.SECONDS)).as("the first load started").isTrue();
            for (int i = 0; i < 50; i++) {
                results.add(pool.submit(() -> cache.get("k", k -> "v" + loads.incrementAndGet())));
            }
            release.countDown();
            for (Future<String> r : results) {
                assertThat(r.get(10, TimeUnit.SECONDS)).isEqualTo("v");
            }
        }
        assertThat(loads).hasValue(1);
    }

    @Test
    void aFailedLoadIsNotCached() {
        assertThatThrownBy(() -> cache.get("k", k -> {
            throw new IllegalStateException("database away");
        })).isInstanceOf(IllegalStateException.class).hasMessage("database away");
        assertThat(cache.get("k", k -> "v")).isEqualTo("v");
    }

    @Test
    void pastItsSizeTheCacheStartsOver() {
        ExpiringCache<Integer, Integer> small = new ExpiringCache<>(Duration.ofMinutes(1), 3, nanos::get);
        AtomicInteger loads = new AtomicInteger();
        for (int i = 0; i < 5; i++) {
            small.get(i, k -> loads.incrementAndGet());
        }
        small.get(0, k -> loads.incrementAndGet());
        assertThat(loads).as("key 0 was dropped when the cache started over").hasValue(6);
    }

    // ---- stale while one reload runs (ADR 0071)

    private final ExpiringCache<String, String> staleCache =
            new ExpiringCache<>(Duration.ofSeconds(5), Duration.ofSeconds(60), 100, nanos::get);

    /** Issue 20: with Postgres 5 s away, every call behind an expired entry waited for its reload (7-24 s). */
    @Test
    void pastItsTtlAnEntryIsAnsweredAtOnceWhileOneReloadReplacesIt() {
        AtomicInteger loads = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        assertThat(staleCache.get("k", k -> "v" + loads.incrementAndGet())).isEqualTo("v1");
        nanos.addAndGet(Duration.ofSeconds(6).toNanos());

        for (int i = 0; i < 50; i++) {
            assertThat(staleCache.get("k", k -> {
                awaitQuietly(release); // the database is slow: the reload holds until released
                return "v" + loads.incrementAndGet();
            })).as("answered without waiting for the reload").isEqualTo("v1");
        }
        release.countDown();
        await("the one background reload replaced the entry").atMost(Duration.ofSeconds(10))
                .until(() -> staleCache.get("k", k -> "unexpected load"), "v2"::equals);
        assertThat(loads).as("one reload for 50 calls").hasValue(2);
    }

    @Test
    void pastTtlPlusStaleForCallersWaitForTheLoad() {
        assertThat(staleCache.get("k", k -> "old")).isEqualTo("old");
        nanos.addAndGet(Duration.ofSeconds(65).toNanos());
        assertThat(staleCache.get("k", k -> "new")).as("too old to answer: loaded on the caller's thread").isEqualTo("new");
    }

    @Test
    void aFailedReloadKeepsTheEntryAndTheNextCallTriesAgain() {
        AtomicInteger attempts = new AtomicInteger();
        assertThat(staleCache.get("k", k -> "v")).isEqualTo("v");
        nanos.addAndGet(Duration.ofSeconds(6).toNanos());
        assertThat(staleCache.get("k", k -> {
            attempts.incrementAndGet();
            throw new IllegalStateException("database away");
        })).isEqualTo("v");
        await("the failed reload ended").atMost(Duration.ofSeconds(10)).until(() -> attempts.get() == 1);
        await("the next call reloads again and its value replaces the entry").atMost(Duration.ofSeconds(10))
                .until(() -> staleCache.get("k", k -> "w" + attempts.incrementAndGet()), v -> v.startsWith("w"));
    }

    /** A revoked key invalidated by the admin API must not be answered stale, nor brought back by a reload. */
    @Test
    void anInvalidatedEntryIsNeverAnsweredStale() {
        CountDownLatch release = new CountDownLatch(1);
        assertThat(staleCache.get("k", k -> "valid")).isEqualTo("valid");
        nanos.addAndGet(Duration.ofSeconds(6).toNanos());
        assertThat(staleCache.get("k", k -> {
            awaitQuietly(release);
            return "reloaded-before-the-revocation";
        })).isEqualTo("valid");
        staleCache.invalidate("k");
        assertThat(staleCache.get("k", k -> "revoked")).isEqualTo("revoked");
        release.countDown();
        nanos.addAndGet(Duration.ofSeconds(1).toNanos());
        await("the reload started before the revocation does not replace what was loaded after it")
                .during(Duration.ofMillis(500)).atMost(Duration.ofSeconds(5))
                .until(() -> staleCache.get("k", k -> "unexpected load"), "revoked"::equals);
    }

    private static void awaitQuietly(CountDownLatch latch) {
        await("released").atMost(Duration.ofSeconds(10)).until(() -> latch.getCount() == 0);
    }
}
