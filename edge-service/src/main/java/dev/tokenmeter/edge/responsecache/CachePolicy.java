package dev.tokenmeter.edge.responsecache;

import java.time.Duration;

/**
 * A caller's response-cache policy, from its plan and its key (V19, ADR 0074/0075): whether the cache is on, for
 * which requests, for how long, and what a hit is billed.
 *
 * @param keySetting      the key's {@code api_key.response_cache}: null (the plan decides), off, on or any
 * @param planTtlSeconds  the plan's {@code response_cache_ttl_seconds}; null: the plan does not cache
 * @param planAnyRequest  the plan's {@code response_cache_any_request}: any request is cacheable, not only the
 *                        deterministic ones
 * @param hitPricePercent the plan's {@code cache_hit_price_percent}: 100 = full price, 0 = free
 */
public record CachePolicy(String keySetting, Integer planTtlSeconds, boolean planAnyRequest, int hitPricePercent) {

    /** No cache: callers without a plan setting, and every caller when the edge has no cache Redis. */
    public static final CachePolicy OFF = new CachePolicy("off", null, false, 100);

    public CachePolicy {
        if (hitPricePercent < 0 || hitPricePercent > 100) {
            throw new IllegalArgumentException("hitPricePercent must be in 0..100: " + hitPricePercent);
        }
    }

    /** The key says on or any, or says nothing and the plan has a TTL. */
    public boolean enabled() {
        return keySetting == null ? planTtlSeconds != null : !keySetting.equals("off");
    }

    /** Any request may be cached, not only the deterministic ones (temperature 0, a seed, embeddings). */
    public boolean anyRequest() {
        return enabled() && ("any".equals(keySetting) || planAnyRequest);
    }

    /** How long an entry this caller stores lives: the plan's TTL, else {@code fallback} (a key turned on). */
    public Duration ttl(Duration fallback) {
        return planTtlSeconds == null ? fallback : Duration.ofSeconds(planTtlSeconds);
    }

    /** What a hit is billed: the percentage of the full price, rounded down (exact integer nano-USD). */
    public long hitPrice(long fullPriceNanoUsd) {
        // A call's cost is at most COST_MAX_NANO_USD (1e13): times 100 stays far inside a long.
        return Math.multiplyExact(fullPriceNanoUsd, (long) hitPricePercent) / 100;
    }
}
