package dev.tokenmeter.sink;

import dev.tokenmeter.db.Migrations;
import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.PostgresEngine;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.ds.PGSimpleDataSource;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Issue 13, least privilege (migration V12, ADR 0060): logged in as each service's role, the role's real work
 * succeeds and everything outside its grants is refused by Postgres — above all, nobody but the owner can delete,
 * truncate or rewrite ledger rows, booked invoice lines or prices, or switch their triggers off.
 */
@ExtendWith(EnginesExtension.class)
class DatabaseRolesIT {

    private final PostgresEngine postgres;
    private String url;

    DatabaseRolesIT(PostgresEngine postgres) {
        this.postgres = postgres;
    }

    @BeforeEach
    void database() throws SQLException {
        url = postgres.createMigratedDatabase("roles");
        // As the owner: a ledger row, a total and a booked invoice line for the roles to try to change.
        try (Connection owner = DriverManager.getConnection(url, postgres.user(), postgres.password());
             Statement s = owner.createStatement()) {
            s.execute("INSERT INTO usage_ledger_event_id (event_id, billing_month) VALUES ('00000000-0000-0000-0000-000000000001', '2026-11-01')");
            s.execute("INSERT INTO billing_period (billing_month, closes_at, closed_at) VALUES ('2026-10-01', now(), now())");
            s.execute("""
                    INSERT INTO invoice_line (billing_month, user_id, tenant_id, model, key_source, event_count, prompt_tokens,
                        cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd, total_revision)
                    VALUES ('2026-10-01', 'u1', 't1', 'gpt-4o', 'SERVICE', 1, 10, 0, 5, 0, 1000, 1)""");
        }
    }

    @Test
    void theSinkInsertsAndUpsertsButCanNeverRewriteTheLedger() throws SQLException {
        DatabaseLogin sink = postgres.login(ServiceLogins.SINK);
        try (Connection c = DriverManager.getConnection(url, sink.user(), sink.password())) {
            // Its real work.
            succeeds(c, "SELECT ensure_usage_ledger_partition('2031-05-01')"); // a new month's partition, via the owner's function
            succeeds(c, "INSERT INTO usage_ledger_event_id (event_id, billing_month) VALUES ('00000000-0000-0000-0000-000000000002', '2031-05-01') ON CONFLICT DO NOTHING");
            succeeds(c, """
                    INSERT INTO sink_offset (consumer_group, topic, kafka_partition, next_offset) VALUES ('g', 't', 0, 5)
                    ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset""");
            succeeds(c, "INSERT INTO billing_period (billing_month, closes_at) VALUES ('2031-05-01', now()) ON CONFLICT DO NOTHING");
            succeeds(c, "UPDATE billing_period SET closed_at = now() WHERE billing_month = '2031-05-01'");
            succeeds(c, "SELECT count(*) FROM usage_ledger");
            // Totals are upserts (TotalsWriter: the newer revision wins).
            succeeds(c, """
                    INSERT INTO usage_total_monthly (user_id, model, key_source, billing_month, tenant_id, event_count,
                        succeeded_count, failed_count, cancelled_count, rejected_count, prompt_tokens, cached_prompt_tokens,
                        completion_tokens, reasoning_tokens, cost_nano_usd, revision)
                    VALUES ('u1', 'gpt-4o', 'SERVICE', '2031-05-01', 't1', 1, 1, 0, 0, 0, 10, 0, 5, 0, 1000, 1)
                    ON CONFLICT (user_id, model, key_source, billing_month) DO UPDATE SET cost_nano_usd = excluded.cost_nano_usd,
                        revision = excluded.revision WHERE usage_total_monthly.revision < excluded.revision""");
            succeeds(c, "INSERT INTO sink_dead_letter (topic, kafka_partition, kafka_offset, reason) VALUES ('t', 0, 1, 'invalid') ON CONFLICT DO NOTHING");
            succeeds(c, "SELECT count(*) FROM sink_dead_letter");
            // The period closer reports a user-month it cannot book (V13's table, granted by V14): an upsert.
            succeeds(c, """
                    INSERT INTO period_close_failure (billing_month, user_id, reason) VALUES ('2026-10-01', 'u1', 'overflow')
                    ON CONFLICT (billing_month, user_id) DO UPDATE SET reason = excluded.reason, last_failed_at = now(),
                        failures = period_close_failure.failures + 1""");
            PGSimpleDataSource asSink = new PGSimpleDataSource();
            asSink.setUrl(url);
            asSink.setUser(sink.user());
            asSink.setPassword(sink.password());
            assertThat(Migrations.requireCurrent(asSink)).as("the sink's start-up check of the schema version").isNotBlank();

            // Never: the ledger is append-only for it.
            refused(c, "DELETE FROM usage_ledger");
            refused(c, "UPDATE usage_ledger SET cost_nano_usd = 0");
            refused(c, "TRUNCATE usage_ledger");
            refused(c, "DELETE FROM usage_ledger_event_id");
            refused(c, "TRUNCATE model_price");
            refused(c, "ALTER TABLE invoice_line DISABLE TRIGGER ALL");
            refused(c, "DELETE FROM invoice_line");
            refused(c, "UPDATE invoice_line SET cost_nano_usd = 0");
            refused(c, "DELETE FROM sink_dead_letter"); // what it set aside stays for someone to look at
            refused(c, "DELETE FROM period_close_failure");
            refused(c, "DROP TABLE invoice_line");
            refused(c, "CREATE TABLE usage_ledger_2099_01 PARTITION OF usage_ledger FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')");
            // Outside its grants.
            refused(c, "INSERT INTO model_price (model, effective_from, input_nano_usd_per_token, price_version) VALUES ('m', now(), 1, 'm@sink')");
            refused(c, "UPDATE account SET status = 'DISABLED'");
            refused(c, "SELECT * FROM api_key");
            refused(c, "SELECT * FROM personal_provider_key");
        }
    }

    @Test
    void theEdgeWritesWhatItsAdminApiOwnsAndNothingElse() throws SQLException {
        DatabaseLogin edge = postgres.login(ServiceLogins.EDGE);
        try (Connection c = DriverManager.getConnection(url, edge.user(), edge.password())) {
            succeeds(c, "INSERT INTO plan (plan_id, display_name, monthly_credit_nano_usd, requests_per_minute, tokens_per_minute) VALUES ('p-roles', 'P', 100, 10, 1000)");
            succeeds(c, "INSERT INTO account (user_id, tenant_id, plan_id) VALUES ('u-roles', 't', 'p-roles')");
            succeeds(c, "UPDATE account SET status = 'DISABLED', updated_at = now() WHERE user_id = 'u-roles'");
            succeeds(c, "INSERT INTO api_key (api_key_id, user_id, key_prefix, salt, key_hash) VALUES ('k-roles', 'u-roles', 'tm_x', '\\x00', '\\x00')");
            succeeds(c, "UPDATE api_key SET revoked_at = now() WHERE api_key_id = 'k-roles'");
            succeeds(c, "INSERT INTO model_price (model, effective_from, input_nano_usd_per_token, price_version) VALUES ('m-roles', now(), 1, 'm-roles@1')");
            succeeds(c, "SELECT * FROM account_limits");
            succeeds(c, "SELECT * FROM usage_total_monthly");
            succeeds(c, "INSERT INTO model_alias (alias, effective_from, model) VALUES ('m-roles-*', now(), 'm-roles')"); // V16
            // V17: the quota rows of FAIL_TO_DATABASE (ADR 0072), its own state: it deletes closed reservations.
            succeeds(c, "INSERT INTO quota_db_month (user_id, billing_month) VALUES ('u-roles', '2026-11-01') ON CONFLICT DO NOTHING");
            succeeds(c, "UPDATE quota_db_month SET pending = true WHERE user_id = 'u-roles'");
            succeeds(c, "INSERT INTO quota_db_rate VALUES ('u-roles', '', 0, 1, 1) ON CONFLICT DO NOTHING");
            succeeds(c, "INSERT INTO quota_db_reservation (reservation_id, user_id, billing_month, api_key_id, route, state, "
                    + "estimate_nano_usd, estimate_tokens, window_start_ms, deadline_ms) VALUES ('r-roles', 'u-roles', '2026-11-01', 'k', 'S', 'O', 1, 1, 0, 0)");
            succeeds(c, "DELETE FROM quota_db_reservation WHERE reservation_id = 'r-roles'");
            refused(c, "DELETE FROM quota_db_month");
            refused(c, "UPDATE model_alias SET model = 'x'"); // append-only (its trigger)
            refused(c, "DELETE FROM model_alias");

            refused(c, "UPDATE api_key SET key_hash = '\\x01' WHERE api_key_id = 'k-roles'"); // a key can be revoked, never rewritten
            refused(c, "TRUNCATE model_price");
            refused(c, "DELETE FROM usage_ledger");
            refused(c, "INSERT INTO usage_ledger_event_id (event_id, billing_month) VALUES ('00000000-0000-0000-0000-000000000003', '2026-11-01')");
            refused(c, "UPDATE usage_total_monthly SET cost_nano_usd = 0");
            refused(c, "ALTER TABLE invoice_line DISABLE TRIGGER ALL");
            refused(c, "SELECT * FROM invoice_line");
            refused(c, "INSERT INTO period_close_failure (billing_month, user_id, reason) VALUES ('2026-10-01', 'u2', 'x')");
            refused(c, "INSERT INTO sink_dead_letter (topic, kafka_partition, kafka_offset, reason) VALUES ('t', 0, 2, 'x')");
            refused(c, "DELETE FROM sink_offset");
        }
    }

    @Test
    void financeOnlyReads() throws SQLException {
        DatabaseLogin finance = postgres.login(ServiceLogins.FINANCE);
        try (Connection c = DriverManager.getConnection(url, finance.user(), finance.password())) {
            succeeds(c, "SELECT * FROM monthly_statement");
            succeeds(c, "SELECT * FROM reconciliation");
            succeeds(c, "SELECT count(*) FROM usage_ledger");
            succeeds(c, "SELECT count(*) FROM invoice_line");
            succeeds(c, "SELECT count(*) FROM period_close_failure");
            succeeds(c, "SELECT count(*) FROM sink_dead_letter");

            refused(c, "DELETE FROM usage_ledger");
            refused(c, "TRUNCATE model_price");
            refused(c, "ALTER TABLE invoice_line DISABLE TRIGGER ALL");
            refused(c, "INSERT INTO invoice_adjustment (billing_month, applies_to_month, user_id, tenant_id, model, key_source, event_count, prompt_tokens, cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd) VALUES ('2026-11-01', '2026-10-01', 'u1', 't1', 'gpt-4o', 'SERVICE', 1, 1, 0, 1, 0, 1)");
            refused(c, "SELECT * FROM api_key");
            refused(c, "SELECT * FROM personal_provider_key");
            refused(c, "UPDATE period_close_failure SET failures = 0");
            refused(c, "INSERT INTO account (user_id, tenant_id, plan_id) VALUES ('u-fin', 't', 'p')");
        }
    }

    private static void succeeds(Connection c, String sql) {
        assertThatCode(() -> {
            try (Statement s = c.createStatement()) {
                s.execute(sql);
            }
        }).as(sql).doesNotThrowAnyException();
    }

    /** 42501 insufficient_privilege (also "must be owner of table"). */
    private static void refused(Connection c, String sql) {
        assertThatThrownBy(() -> {
            try (Statement s = c.createStatement()) {
                s.execute(sql);
            }
        }).as(sql).isInstanceOf(SQLException.class)
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).as(sql + ": " + e.getMessage()).isEqualTo("42501"));
    }
}
