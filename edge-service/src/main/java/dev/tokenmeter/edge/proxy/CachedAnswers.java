package dev.tokenmeter.edge.proxy;

import dev.tokenmeter.edge.call.MeteredCall;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.responsecache.CacheKeys;
import dev.tokenmeter.edge.responsecache.CacheMode;
import dev.tokenmeter.edge.responsecache.CachePolicy;
import dev.tokenmeter.edge.responsecache.CachedAnswer;
import dev.tokenmeter.edge.responsecache.ResponseCache;

import java.io.IOException;
import java.time.Clock;
import java.time.Duration;

/**
 * The proxy's side of the response cache (ADR 0074/0075): which calls may use it, the lookup, the answer of a hit,
 * and what a miss stores once its answer is billed.
 *
 * <p>A caller's policy (plan and key) turns it on; the request header {@code x-tokenmeter-cache} chooses
 * use/refresh/bypass within that. The response says {@code x-tokenmeter-cache: hit|miss|refresh|bypass} for a
 * cacheable call, and on a hit {@code age} (seconds, as HTTP caches do) and {@code x-tokenmeter-cache-age-ms}.
 */
final class CachedAnswers {

    static final String AGE_MS_HEADER = "x-tokenmeter-cache-age-ms";

    private final ResponseCache cache;
    private final Duration defaultTtl;
    private final Duration flightWait;
    private final Duration flightLease;
    private final Clock clock;

    /**
     * @param cache       null: the edge has no response cache, every call goes upstream
     * @param flightWait  how long an identical call waits for the leader's answer (0 = no single flight)
     * @param flightLease how long a lead lasts unless given up (a leader that died is replaced after it)
     */
    CachedAnswers(ResponseCache cache, Duration defaultTtl, Duration flightWait, Duration flightLease, Clock clock) {
        this.cache = cache;
        this.defaultTtl = defaultTtl;
        this.flightWait = flightWait;
        this.flightLease = flightLease;
        this.clock = clock;
    }

    /**
     * What the cache does for one call.
     *
     * @param hit   the entry that answers it, or null
     * @param store where its answer is stored once billed (a miss or a refresh), or null
     */
    record Lookup(CachedAnswer hit, long ageMs, Store store, String result) {
        /** Not a cacheable call (or no cache): counted nowhere. */
        static final Lookup NONE = new Lookup(null, 0, null, null);
        static final Lookup BYPASS = new Lookup(null, 0, null, "bypass");
    }

    /**
     * Where a miss's answer goes.
     *
     * @param leadToken the single flight's lead this call holds (identical calls wait for its answer), or null
     */
    record Store(ResponseCache cache, String key, Duration ttl, Clock clock, String leadToken) {

        /** Stores a billed answer (status 200 with reported usage only); best effort, never fails the call. */
        void put(String contentType, TokenUsage reported, String answeredModel, String serviceTier, byte[] body) {
            cache.put(key, new CachedAnswer(clock.millis(), contentType, reported, answeredModel, serviceTier, body), ttl);
        }

        int maxBytes() {
            return cache.maxEntryBytes();
        }

        /**
         * Gives the lead up once the call is over — after its answer is stored, or when it failed, so that one of
         * the waiting calls takes over at once.
         */
        void releaseLead() {
            if (leadToken != null) {
                cache.releaseLead(key, leadToken);
            }
        }
    }

    /** The calls' side of the lead: done with this call (its answer stored or not). */
    static void done(Lookup lookup) {
        if (lookup.store() != null) {
            lookup.store().releaseLead();
        }
    }

    /**
     * The cache's part in this call. A bad {@code x-tokenmeter-cache} value is refused (400), whatever the policy.
     */
    Lookup lookup(ProxyExchange ctx, MeteredCall call, RequestReader.ProxyRequest request) throws RequestReader.BadRequest {
        CacheMode mode = CacheMode.parse(ctx.requestHeader(CacheMode.HEADER));
        if (mode == null) {
            throw new RequestReader.BadRequest(OpenAiError.invalidRequest(
                    "x-tokenmeter-cache must be use, refresh or bypass.", CacheMode.HEADER), "invalid_cache_mode");
        }
        CachePolicy policy = call.caller().cache();
        if (cache == null || !policy.enabled() || !CacheKeys.cacheable(call.endpoint(), request.tree(), policy.anyRequest())) {
            return Lookup.NONE;
        }
        ctx.header(CacheMode.HEADER, mode.name().toLowerCase(java.util.Locale.ROOT));
        if (mode == CacheMode.BYPASS) {
            return Lookup.BYPASS;
        }
        String key = CacheKeys.key(call.caller().tenantId(), call.endpoint(), request.tree());
        Duration ttl = policy.ttl(defaultTtl);
        if (mode == CacheMode.USE) {
            CachedAnswer hit = cache.get(key);
            String leadToken = null;
            if (hit == null && !flightWait.isZero()) {
                Flight flight = leadOrWait(key);
                hit = flight.hit();
                leadToken = flight.leadToken();
            }
            if (hit != null) {
                long age = hit.ageMs(clock.millis());
                ctx.header(CacheMode.HEADER, "hit");
                ctx.header("age", Long.toString(age / 1000));
                ctx.header(AGE_MS_HEADER, Long.toString(age));
                return new Lookup(hit, age, null, "hit");
            }
            ctx.header(CacheMode.HEADER, "miss");
            return new Lookup(null, 0, new Store(cache, key, ttl, clock, leadToken), "miss");
        }
        return new Lookup(null, 0, new Store(cache, key, ttl, clock, null), "refresh");
    }

    /** The single flight's outcome for one call: the answer the leader stored, or the lead, or neither. */
    private record Flight(CachedAnswer hit, String leadToken) {
    }

    /**
     * Single flight across edges (issue 19): the first identical call takes the lead (SET NX with a lease in the
     * cache Redis) and goes upstream; the others poll for its stored answer. When the lead is given up without an
     * answer (the leader failed) or its lease ran out, the next call to try takes it over. Past
     * {@code flightWait}, or when Redis fails, a call goes upstream on its own: a wait is always bounded.
     */
    private Flight leadOrWait(String key) {
        long deadline = System.nanoTime() + flightWait.toNanos();
        long pauseMs = 2;
        while (true) {
            String token = cache.tryLead(key, flightLease);
            if (token == null || System.nanoTime() > deadline) {
                return new Flight(null, null);
            }
            if (!token.equals(ResponseCache.NOT_LED)) {
                // The previous leader may have stored its answer and let go since this call's last look: a leader
                // stores before it lets go, so one more look now sees that answer.
                CachedAnswer stored = cache.get(key);
                if (stored != null) {
                    cache.releaseLead(key, token);
                    return new Flight(stored, null);
                }
                return new Flight(null, token);
            }
            java.util.concurrent.locks.LockSupport.parkNanos(pauseMs * 1_000_000);
            pauseMs = Math.min(50, pauseMs * 2);
            CachedAnswer hit = cache.get(key);
            if (hit != null) {
                return new Flight(hit, null);
            }
        }
    }

    /**
     * Answers a hit whose call is admitted, billed at {@code billedNanoUsd}: the event first (durable before the
     * answer, as for any call), then the cached bytes — a JSON body, or the stored SSE stream with its usage chunk —
     * then the reservation is settled, off the caller's wait.
     */
    static void answerHit(ProxyExchange ctx, MeteredCall call, Lookup lookup, long billedNanoUsd, EdgeMetrics metrics) {
        CachedAnswer hit = lookup.hit();
        MeteredCall.Billed billed = call.billCacheHit(200, hit.usage(), billedNanoUsd, lookup.ageMs());
        metrics.request(call.endpoint(), "succeeded");
        metrics.cacheHitAnswered(call.endpoint(), call.model(), hit.usage().totalTokens(), call.price().costNanoUsd(hit.usage()));
        if (hit.contentType().startsWith("text/event-stream")) {
            ctx.header("Cache-Control", "no-cache");
        }
        try {
            ctx.respond(200, hit.contentType(), hit.body());
        } catch (IOException clientGone) {
            // billed already: the answer was given, the caller did not stay for it
        }
        ctx.finish();
        call.settle(billed);
    }
}
