package dev.tokenmeter.edge.quota;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.tokenmeter.edge.account.PostgresAccountDirectory;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.PostgresEngine;
import dev.tokenmeter.testkit.RedisEngine;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;

/** Real Postgres (fresh migrated database) + real Redis + an engine with a hand-moved clock. */
final class QuotaFixture implements AutoCloseable {

    final HikariDataSource dataSource;
    final QuotaRedis redis;
    final MutableClock clock;
    final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    final QuotaEngine engine;
    final String plan = Names.unique("plan");

    QuotaFixture(RedisEngine redisEngine, PostgresEngine postgres, QuotaConfig config, Instant start) {
        this(redisEngine.uri(), postgres, config, start);
    }

    /** @param redisUri redis://... or redis-cluster://... (QuotaClusterIT) */
    QuotaFixture(String redisUri, PostgresEngine postgres, QuotaConfig config, Instant start) {
        HikariConfig hc = new HikariConfig();
        hc.setJdbcUrl(postgres.createMigratedDatabase("quota"));
        hc.setUsername(postgres.user());
        hc.setPassword(postgres.password());
        hc.setMaximumPoolSize(4);
        this.dataSource = new HikariDataSource(hc);
        // Generous timeout: the 2-core box is shared, and a test must not fail over to the policy by accident.
        this.redis = QuotaRedis.connect(redisUri, Duration.ofSeconds(2));
        this.clock = new MutableClock(start);
        sql("INSERT INTO plan (plan_id, display_name, monthly_credit_nano_usd, requests_per_minute, tokens_per_minute) VALUES (?, 'test', 1000, 100, 100000)", plan);
        this.engine = QuotaEngine.builder()
                .redis(redis.commands())
                .accountDirectory(new PostgresAccountDirectory(dataSource, config.accountCacheTtl()))
                .usageBaseline(new JooqUsageBaseline(dataSource))
                .dataSource(dataSource)
                .config(config)
                .clock(clock)
                .meterRegistry(meters)
                .build();
    }

    /** Creates a user with its own limits (overrides of the plan); returns its id. */
    String user(String prefix, long creditNanoUsd, int rpm, long tpm, boolean personalKey) {
        return user(prefix, "t1", creditNanoUsd, rpm, tpm, personalKey);
    }

    /** A user of {@code tenantId} (tenant budgets, ADR 0081: Redis is shared by the tests, so each takes its own tenant). */
    String user(String prefix, String tenantId, long creditNanoUsd, int rpm, long tpm, boolean personalKey) {
        String userId = Names.unique(prefix);
        sql("INSERT INTO account (user_id, tenant_id, plan_id, monthly_credit_override_nano_usd, requests_per_minute_override, tokens_per_minute_override) VALUES (?, ?, ?, ?, ?, ?)",
                userId, tenantId, plan, creditNanoUsd, rpm, tpm);
        if (personalKey) {
            sql("INSERT INTO personal_provider_key (user_id, key_ciphertext, key_nonce, master_key_id, key_last4) VALUES (?, '\\x00'::bytea, '\\x00'::bytea, 'k1', 'abcd')", userId);
        }
        return userId;
    }

    /** The plan's soft limit (percent of the credit); set it before the plan's users are first looked up (account cache). */
    void softLimitPercent(int percent) {
        sql("UPDATE plan SET soft_limit_percent = ? WHERE plan_id = ?", percent, plan);
    }

    void disable(String userId) {
        sql("UPDATE account SET status = 'DISABLED' WHERE user_id = ?", userId);
    }

    /** A monthly total as the sink writes it. */
    void monthlyTotal(String userId, YearMonth month, String keySource, long costNanoUsd) {
        sql("INSERT INTO usage_total_monthly (user_id, model, key_source, billing_month, tenant_id, event_count, succeeded_count, failed_count, cancelled_count, rejected_count, prompt_tokens, cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd, revision) "
                + "VALUES (?, 'gpt-4o-mini', ?, ?, 't1', 1, 1, 0, 0, 0, 0, 0, 0, 0, ?, 1) "
                + "ON CONFLICT (user_id, model, key_source, billing_month) DO UPDATE SET cost_nano_usd = EXCLUDED.cost_nano_usd, revision = usage_total_monthly.revision + 1",
                userId, keySource, month.atDay(1), costNanoUsd);
    }

    /** One ledger row of a user's key, as the sink writes it (a key budget's rebuild reads these, ADR 0081). */
    void ledgerRow(String userId, String apiKeyId, YearMonth month, String keySource, long costNanoUsd) {
        ledgerRow(userId, apiKeyId, month, keySource, costNanoUsd, null);
    }

    void ledgerRow(String userId, String apiKeyId, YearMonth month, String keySource, long costNanoUsd, String reservationId) {
        ledgerRow("t1", userId, apiKeyId, month, keySource, costNanoUsd, reservationId);
    }

    void ledgerRow(String tenantId, String userId, String apiKeyId, YearMonth month, String keySource, long costNanoUsd,
                   String reservationId) {
        sql("INSERT INTO usage_ledger (event_id, billing_month, occurred_at, received_at, tenant_id, user_id, api_key_id, key_source, provider, model, endpoint, outcome, http_status, prompt_tokens, cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd, usage_source, streamed, cache_hit, latency_ms, reservation_id) "
                + "VALUES (gen_random_uuid(), ?, ?, ?, ?, ?, ?, ?, 'openai', 'gpt-4o-mini', '/v1/chat/completions', 'SUCCEEDED', 200, 1, 0, 1, 0, ?, 'REPORTED', false, false, 5, ?)",
                month.atDay(1), month.atDay(2).atStartOfDay().atOffset(java.time.ZoneOffset.UTC),
                month.atDay(2).atStartOfDay().atOffset(java.time.ZoneOffset.UTC), tenantId, userId, apiKeyId, keySource, costNanoUsd,
                reservationId);
    }

    /** A call on the user's fixture key ({@code key-<user>}) with its own monthly budget (ADR 0081). */
    ReserveRequest keyRequest(String userId, long estimateNanoUsd, long keyBudgetNanoUsd) {
        return new ReserveRequest(userId, "key-" + userId, "gpt-4o-mini", estimateNanoUsd, 1, keyBudgetNanoUsd);
    }

    /** A call on the user's fixture key under its tenant's monthly budget (ADR 0081). */
    ReserveRequest tenantRequest(String userId, long estimateNanoUsd, long tenantBudgetNanoUsd) {
        return new ReserveRequest(userId, "key-" + userId, "gpt-4o-mini", estimateNanoUsd, 1, ReserveRequest.NO_KEY_BUDGET,
                tenantBudgetNanoUsd);
    }

    ReserveRequest request(String userId, long estimateNanoUsd, long tokens) {
        return new ReserveRequest(userId, "key-" + userId, "gpt-4o-mini", estimateNanoUsd, tokens);
    }

    private void sql(String sql, Object... args) {
        try (Connection c = dataSource.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) ps.setObject(i + 1, args[i]);
            ps.executeUpdate();
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        engine.close();
        redis.close();
        dataSource.close();
    }
}
