package dev.tokenmeter.edge.cache;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * A per-key cache whose entries live for a fixed time after they were loaded, and in which concurrent misses of one
 * key share a single load. Without the sharing, every call that arrives while an entry is expired or missing runs
 * its own database query: at a few hundred calls in flight for one busy key, each expiry became a few hundred
 * queries queued on a small connection pool (issue 4's profile), stalling all of them.
 *
 * <p>A failed load is not cached: the callers that waited for it get its exception, and the next call tries again.
 * Past {@code maxEntries} the cache is emptied rather than growing (a flood of distinct keys costs queries, never
 * memory).
 *
 * <p><b>Stale while one reload runs</b> ({@code staleFor} &gt; 0, ADR 0071): for {@code staleFor} after its TTL an
 * entry is still answered at once while a single background reload replaces it, so a slow database (issue 20's
 * SlowNetworkIT: calls waited 7–24 s behind expired entries with Postgres 5 s away) delays no call that has an entry.
 * Past {@code ttl + staleFor}, or after {@link #invalidate}, callers wait for the load as before. A failed reload
 * keeps the entry until then and is tried again by the next call.
 */
public final class ExpiringCache<K, V> {

    private static final class Slot<V> {
        final CompletableFuture<V> value = new CompletableFuture<>();
        /** Written before {@code value} completes, read after it completed. */
        volatile long expiresAtNanos;
        /** Set by the one caller that starts this entry's background reload; cleared if that reload fails. */
        final AtomicBoolean reloading = new AtomicBoolean();
    }

    private final long ttlNanos;
    private final long staleForNanos;
    private final int maxEntries;
    private final LongSupplier nanoTime;
    private final ConcurrentHashMap<K, Slot<V>> slots = new ConcurrentHashMap<>();

    public ExpiringCache(Duration ttl, int maxEntries, LongSupplier nanoTime) {
        this(ttl, Duration.ZERO, maxEntries, nanoTime);
    }

    /**
     * As above, answering an expired entry for {@code staleFor} more while one background reload runs (not with a
     * zero {@code ttl}: no caching at all).
     */
    public ExpiringCache(Duration ttl, Duration staleFor, int maxEntries, LongSupplier nanoTime) {
        if (ttl.isNegative() || staleFor.isNegative()) {
            throw new IllegalArgumentException("ttl and staleFor must not be negative: " + ttl + ", " + staleFor);
        }
        this.ttlNanos = ttl.toNanos();
        this.staleForNanos = ttl.isZero() ? 0 : staleFor.toNanos(); // a TTL of zero means no caching, stale included
        this.maxEntries = maxEntries;
        this.nanoTime = Objects.requireNonNull(nanoTime, "nanoTime");
    }

    /** The cached value of {@code key}, or the one {@code loader} returns (one load per key at a time). */
    public V get(K key, Function<? super K, ? extends V> loader) {
        while (true) {
            Slot<V> slot = slots.get(key);
            if (slot != null && (!slot.value.isDone() || nanoTime.getAsLong() - slot.expiresAtNanos < 0)) {
                return join(slot);
            }
            if (slot != null && staleForNanos > 0 && !slot.value.isCompletedExceptionally()
                    && nanoTime.getAsLong() - slot.expiresAtNanos < staleForNanos) {
                if (slot.reloading.compareAndSet(false, true)) {
                    Thread.ofVirtual().name("cache-reload").start(() -> reload(key, slot, loader));
                }
                return join(slot);
            }
            Slot<V> fresh = new Slot<>();
            boolean mine = slot == null ? slots.putIfAbsent(key, fresh) == null : slots.replace(key, slot, fresh);
            if (!mine) {
                continue; // another caller started the load first: wait for theirs
            }
            if (slots.size() > maxEntries) {
                slots.clear();
            }
            V value;
            try {
                value = loader.apply(key);
            } catch (RuntimeException | Error e) {
                slots.remove(key, fresh);
                fresh.value.completeExceptionally(e);
                throw e;
            }
            fresh.expiresAtNanos = nanoTime.getAsLong() + ttlNanos;
            fresh.value.complete(value);
            return value;
        }
    }

    /** The background reload of an entry answered stale: replaces it unless it was invalidated or replaced since. */
    private void reload(K key, Slot<V> stale, Function<? super K, ? extends V> loader) {
        V value;
        try {
            value = loader.apply(key);
        } catch (RuntimeException | Error e) {
            stale.reloading.set(false); // the next call past the TTL tries again; the entry stays until ttl + staleFor
            return;
        }
        Slot<V> fresh = new Slot<>();
        fresh.expiresAtNanos = nanoTime.getAsLong() + ttlNanos;
        fresh.value.complete(value);
        slots.replace(key, stale, fresh);
    }

    public void invalidate(K key) {
        slots.remove(key);
    }

    public void invalidateAll() {
        slots.clear();
    }

    private static <V> V join(Slot<V> slot) {
        try {
            return slot.value.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw e;
        }
    }
}
