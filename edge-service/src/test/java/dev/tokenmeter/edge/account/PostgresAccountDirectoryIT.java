package dev.tokenmeter.edge.account;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.PostgresEngine;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Plan values with per-user overrides, own keys (revoked ones do not count), the cache and invalidate. */
@ExtendWith(EnginesExtension.class)
class PostgresAccountDirectoryIT {

    @Test
    void readsEffectiveLimitsAndCachesUntilInvalidatedOrExpired(PostgresEngine postgres) {
        HikariConfig hc = new HikariConfig();
        hc.setJdbcUrl(postgres.createMigratedDatabase("accounts"));
        hc.setUsername(postgres.user());
        hc.setPassword(postgres.password());
        hc.setMaximumPoolSize(2);
        try (HikariDataSource ds = new HikariDataSource(hc)) {
            String plan = Names.unique("plan");
            sql(ds, "INSERT INTO plan (plan_id, display_name, monthly_credit_nano_usd, requests_per_minute, tokens_per_minute, soft_limit_percent) VALUES (?, 'p', 5000, 60, 90000, 75)", plan);
            sql(ds, "INSERT INTO account (user_id, tenant_id, plan_id, requests_per_minute_override) VALUES ('carol', 'acme', ?, 7)", plan);
            AtomicLong nanos = new AtomicLong();
            PostgresAccountDirectory dir = new PostgresAccountDirectory(ds, Duration.ofSeconds(5), nanos::get);

            Account carol = dir.find("carol").orElseThrow();
            assertThat(carol).isEqualTo(new Account("carol", "acme", "ACTIVE", 5000, 7, 90000, 75, false));
            assertThat(dir.find("nobody")).isEmpty();

            sql(ds, "INSERT INTO personal_provider_key (user_id, key_ciphertext, key_nonce, master_key_id, key_last4) VALUES ('carol', '\\x00'::bytea, '\\x00'::bytea, 'k1', 'abcd')");
            sql(ds, "UPDATE account SET monthly_credit_override_nano_usd = 9000 WHERE user_id = 'carol'");
            assertThat(dir.find("carol").orElseThrow().hasPersonalKey()).as("cached").isFalse();
            dir.invalidate("carol");
            Account updated = dir.find("carol").orElseThrow();
            assertThat(updated.hasPersonalKey()).isTrue();
            assertThat(updated.monthlyCreditNanoUsd()).isEqualTo(9000);

            sql(ds, "UPDATE personal_provider_key SET revoked_at = now() WHERE user_id = 'carol'");
            sql(ds, "UPDATE account SET status = 'DISABLED' WHERE user_id = 'carol'");
            nanos.addAndGet(Duration.ofSeconds(5).toNanos()); // the cache entry expires: one reload replaces it (ADR 0071)
            await("the reload after the TTL brings the revoked key and the disabled account").atMost(Duration.ofSeconds(10))
                    .until(() -> dir.find("carol").orElseThrow(), a -> !a.hasPersonalKey() && !a.active());

            sql(ds, "UPDATE account SET status = 'ACTIVE' WHERE user_id = 'carol'");
            nanos.addAndGet(Duration.ofSeconds(5).plus(PostgresAccountDirectory.STALE_FOR).toNanos());
            assertThat(dir.find("carol").orElseThrow().active()).as("past TTL + STALE_FOR: loaded before answering").isTrue();
        }
    }

    private static void sql(HikariDataSource ds, String sql, Object... args) {
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) ps.setObject(i + 1, args[i]);
            ps.executeUpdate();
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }
}
