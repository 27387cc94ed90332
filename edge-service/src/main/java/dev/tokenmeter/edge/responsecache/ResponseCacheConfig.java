package dev.tokenmeter.edge.responsecache;

import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.config.Redact;

import java.time.Duration;
import java.util.List;

/**
 * The edge's response-cache settings ({@link #KEYS}). With no {@code RESPONSE_CACHE_REDIS_URI} the edge has no cache
 * and every caller's policy is ignored.
 */
public record ResponseCacheConfig(String redisUri, Duration timeout, int maxEntryBytes, Duration defaultTtl, Duration flightWait,
                                  Duration flightLease) {

    public static final List<ConfigKey> KEYS = List.of(
            new ConfigKey("RESPONSE_CACHE_REDIS_URI", "", "Redis of the response cache (ADR 0074): its own instance with maxmemory and allkeys-lru, never the quota engine's REDIS_URI (noeviction). Empty = no response cache."),
            new ConfigKey("RESPONSE_CACHE_TIMEOUT", "250ms", "Longest wait for the cache's Redis; past it a lookup is a miss and a store is skipped (the call goes on)."),
            new ConfigKey("RESPONSE_CACHE_MAX_ENTRY_BYTES", "1048576", "Largest answer stored (body plus ~100 bytes of metadata); a larger one is served but not cached."),
            new ConfigKey("RESPONSE_CACHE_DEFAULT_TTL", "5m", "TTL of entries stored for a key whose response_cache is 'on' or 'any' while its plan sets no response_cache_ttl_seconds."),
            new ConfigKey("RESPONSE_CACHE_FLIGHT_WAIT", "30s", "Single flight: how long an identical cacheable call waits for the one call (on any edge) that went upstream; past it it goes upstream itself. 0 = no single flight."),
            new ConfigKey("RESPONSE_CACHE_FLIGHT_LEASE", "20s", "How long a single flight's lead lasts unless given up: a leader that died is replaced by a waiting call after it."));

    /** Reads the {@link #KEYS} (which {@code r} must list). */
    public static ResponseCacheConfig read(EnvReader r) {
        return new ResponseCacheConfig(
                r.string("RESPONSE_CACHE_REDIS_URI"),
                r.duration("RESPONSE_CACHE_TIMEOUT", Duration.ofMillis(1)),
                r.integer("RESPONSE_CACHE_MAX_ENTRY_BYTES", 1024, 64 << 20),
                r.duration("RESPONSE_CACHE_DEFAULT_TTL", Duration.ofSeconds(1)),
                r.duration("RESPONSE_CACHE_FLIGHT_WAIT"),
                r.duration("RESPONSE_CACHE_FLIGHT_LEASE", Duration.ofMillis(100)));
    }

    public boolean enabled() {
        return !redisUri.isBlank();
    }

    @Override
    public String toString() {
        return "ResponseCacheConfig[redisUri=" + (redisUri.isBlank() ? "<off>" : Redact.url(redisUri)) + ", timeout=" + timeout
                + ", maxEntryBytes=" + maxEntryBytes + ", defaultTtl=" + defaultTtl + ", flightWait=" + flightWait
                + ", flightLease=" + flightLease + "]";
    }
}
