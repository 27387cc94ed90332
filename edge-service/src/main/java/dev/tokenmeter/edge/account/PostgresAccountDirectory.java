package dev.tokenmeter.edge.account;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT_LIMITS;
import static dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY;

import dev.tokenmeter.edge.cache.ExpiringCache;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.function.LongSupplier;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/**
 * Accounts from Postgres (view {@code account_limits} plus an unrevoked {@code personal_provider_key}),
 * with a short-lived per-user cache: a limit change reaches the edge within {@code cacheTtl} plus one reload
 * (answered stale meanwhile, up to {@link #STALE_FOR}; ADR 0071), or at once through {@link #invalidate}. Unknown users are cached too (as empty), so a flood of calls for a
 * missing user does not reach Postgres on every call. Concurrent misses of one user share one query
 * ({@link ExpiringCache}).
 */
public final class PostgresAccountDirectory implements AccountDirectory {

    private static final int MAX_ENTRIES = 100_000;
    /** How long past its TTL an account is still answered while one reload runs (ADR 0071). */
    static final Duration STALE_FOR = Duration.ofSeconds(60);

    private final DSLContext db;
    private final ExpiringCache<String, Optional<Account>> cache;

    public PostgresAccountDirectory(DataSource dataSource, Duration cacheTtl) {
        this(dataSource, cacheTtl, System::nanoTime);
    }

    PostgresAccountDirectory(DataSource dataSource, Duration cacheTtl, LongSupplier nanoTime) {
        this.db = DSL.using(Objects.requireNonNull(dataSource, "dataSource"), SQLDialect.POSTGRES);
        if (cacheTtl.isNegative()) {
            throw new IllegalArgumentException("cacheTtl must not be negative: " + cacheTtl);
        }
        this.cache = new ExpiringCache<>(cacheTtl, STALE_FOR, MAX_ENTRIES, nanoTime);
    }

    @Override
    public Optional<Account> find(String userId) {
        Objects.requireNonNull(userId, "userId");
        return cache.get(userId, this::load);
    }

    @Override
    public void invalidate(String userId) {
        cache.invalidate(userId);
    }

    private Optional<Account> load(String userId) {
        var hasKey = DSL.exists(DSL.selectOne().from(PERSONAL_PROVIDER_KEY)
                .where(PERSONAL_PROVIDER_KEY.USER_ID.eq(ACCOUNT_LIMITS.USER_ID))
                .and(PERSONAL_PROVIDER_KEY.REVOKED_AT.isNull()));
        return db.select(ACCOUNT_LIMITS.USER_ID, ACCOUNT_LIMITS.TENANT_ID, ACCOUNT_LIMITS.STATUS,
                        ACCOUNT_LIMITS.MONTHLY_CREDIT_NANO_USD, ACCOUNT_LIMITS.REQUESTS_PER_MINUTE,
                        ACCOUNT_LIMITS.TOKENS_PER_MINUTE, ACCOUNT_LIMITS.SOFT_LIMIT_PERCENT, DSL.field(hasKey))
                .from(ACCOUNT_LIMITS)
                .where(ACCOUNT_LIMITS.USER_ID.eq(userId))
                .fetchOptional(r -> new Account(r.value1(), r.value2(), r.value3(), r.value4(), r.value5(),
                        r.value6(), r.value7(), r.value8()));
    }
}
