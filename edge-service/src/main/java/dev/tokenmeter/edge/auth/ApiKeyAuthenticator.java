package dev.tokenmeter.edge.auth;

import dev.tokenmeter.edge.responsecache.CachePolicy;
import dev.tokenmeter.edge.account.Account;
import dev.tokenmeter.edge.cache.ExpiringCache;
import org.jooq.DSLContext;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;
import static dev.tokenmeter.db.jooq.Tables.API_KEY;
import static dev.tokenmeter.db.jooq.Tables.PLAN;

/**
 * Authenticates {@code tm_...} service keys against table {@code api_key}: the key's prefix finds the row, then
 * {@link ApiKeys#matches} checks the salted SHA-256 in constant time. A revoked key is refused like an unknown one.
 *
 * <p>Lookups are cached for a short TTL (default 5 s) keyed by the prefix, so a busy caller costs one database
 * read per TTL, and a revocation or a status change takes effect within one TTL (at once on the edge whose admin API made it). The cache holds the stored salt and hash, never the
 * presented key, so the hash check still runs on every call and a wrong secret with a known prefix is refused.
 * Calls that miss the cache for the same prefix at the same time share one query ({@link ExpiringCache}). The
 * plan's and key's model allow-lists (ADR 0077) come with the key, so they too apply within one TTL (at once on the
 * edge whose admin API changed them). A key's expiry is cached as the instant and compared with the clock on every
 * call, so it takes effect at that instant, not a TTL later (ADR 0077).
 */
public final class ApiKeyAuthenticator implements Authenticator {

    private record StoredKey(String apiKeyId, String userId, String tenantId, byte[] salt, byte[] hash, boolean revoked,
                             boolean active, CachePolicy cache, ModelAllowList models, Instant expiresAt,
                             String project, Long budgetNanoUsd) {
    }

    private static final StoredKey ABSENT = new StoredKey(null, null, null, null, null, true, false, CachePolicy.OFF,
            ModelAllowList.ANY, null, null, null);
    private static final int MAX_ENTRIES = 100_000;
    /**
     * How long past its TTL a key is still answered while one reload runs (ADR 0071): a slow Postgres delays no call
     * of a known key; a revocation made on another edge takes effect within the TTL plus one reload — up to this long
     * when Postgres is slow or away. A revocation through this edge's admin API takes effect at once.
     */
    static final Duration STALE_FOR = Duration.ofSeconds(60);

    private final DSLContext db;
    private final Clock clock;
    private final ExpiringCache<String, StoredKey> cache;

    public ApiKeyAuthenticator(DSLContext db, Duration ttl) {
        this(db, ttl, Clock.systemUTC());
    }

    ApiKeyAuthenticator(DSLContext db, Duration ttl, Clock clock) {
        this.db = db;
        this.clock = clock;
        this.cache = new ExpiringCache<>(ttl, STALE_FOR, MAX_ENTRIES, () -> clock.millis() * 1_000_000L);
    }

    @Override
    public Optional<Caller> authenticate(String presentedKey) {
        String prefix = ApiKeys.prefixOf(presentedKey);
        if (prefix == null) {
            return Optional.empty();
        }
        StoredKey stored = cache.get(prefix, this::lookup);
        if (stored == ABSENT || stored.revoked() || !ApiKeys.matches(presentedKey, stored.salt(), stored.hash())) {
            return Optional.empty();
        }
        return Optional.of(new Caller(stored.apiKeyId(), stored.userId(), stored.tenantId(), stored.active(), stored.cache(),
                stored.models(), stored.expiresAt() != null && !clock.instant().isBefore(stored.expiresAt()),
                stored.project(), stored.budgetNanoUsd()));
    }

    private StoredKey lookup(String prefix) {
        var r = db.select(API_KEY.API_KEY_ID, API_KEY.USER_ID, ACCOUNT.TENANT_ID, API_KEY.SALT, API_KEY.KEY_HASH, API_KEY.REVOKED_AT,
                        ACCOUNT.STATUS, API_KEY.RESPONSE_CACHE, PLAN.RESPONSE_CACHE_TTL_SECONDS, PLAN.RESPONSE_CACHE_ANY_REQUEST,
                        PLAN.CACHE_HIT_PRICE_PERCENT, PLAN.ALLOWED_MODELS, API_KEY.ALLOWED_MODELS,
                        API_KEY.EXPIRES_AT, API_KEY.PROJECT, API_KEY.MONTHLY_BUDGET_NANO_USD)
                .from(API_KEY).join(ACCOUNT).on(ACCOUNT.USER_ID.eq(API_KEY.USER_ID))
                .join(PLAN).on(PLAN.PLAN_ID.eq(ACCOUNT.PLAN_ID))
                .where(API_KEY.KEY_PREFIX.eq(prefix))
                .fetchOne();
        return r == null ? ABSENT
                : new StoredKey(r.value1(), r.value2(), r.value3(), r.value4(), r.value5(), r.value6() != null,
                        Account.ACTIVE.equals(r.value7()), new CachePolicy(r.value8(), r.value9(), r.value10(), r.value11()),
                        ModelAllowList.of(r.value12(), r.value13()), r.value14() == null ? null : r.value14().toInstant(),
                        r.value15(), r.value16());
    }

    @Override
    public void invalidateAll() {
        cache.invalidateAll();
    }
}
