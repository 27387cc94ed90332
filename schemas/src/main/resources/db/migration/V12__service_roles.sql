-- Least privilege (issue 13, ADR 0060). The migration owner (whoever runs Flyway: the deployment's init
-- step only) owns every object; the services log in as their own roles, which are members of these
-- NOLOGIN group roles and hold only the grants below. Nobody but the owner may DELETE, TRUNCATE, ALTER
-- or disable a trigger: the ledger and booked invoice lines cannot be rewritten by a service.
-- Roles are cluster-wide while migrations run per database, so they are created only if missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tokenmeter_edge') THEN
        CREATE ROLE tokenmeter_edge NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tokenmeter_sink') THEN
        CREATE ROLE tokenmeter_sink NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tokenmeter_finance') THEN
        CREATE ROLE tokenmeter_finance NOLOGIN;
    END IF;
END $$;

-- Services check the schema version at start-up (billing-db Migrations.requireCurrent).
GRANT SELECT ON flyway_schema_history TO tokenmeter_edge, tokenmeter_sink;

-- edge-service: reads accounts, keys and prices (auth, quota, pricing), the monthly totals (quota
-- baseline and reconciler); writes what its admin API owns (plans, accounts, service keys, personal
-- keys, new prices). model_price stays append-only (its trigger), api_key rows can only be revoked.
GRANT SELECT ON plan, account, account_limits, api_key, personal_provider_key, model_price, usage_total_monthly
    TO tokenmeter_edge;
GRANT INSERT, UPDATE ON plan, account TO tokenmeter_edge;
GRANT INSERT ON api_key TO tokenmeter_edge;
GRANT UPDATE (revoked_at) ON api_key TO tokenmeter_edge;
GRANT INSERT, UPDATE, DELETE ON personal_provider_key TO tokenmeter_edge;
GRANT INSERT ON model_price TO tokenmeter_edge;

-- billing-sink: inserts ledger rows (never UPDATE, DELETE or TRUNCATE), upserts totals, keeps its
-- offsets, sets aside what the database refuses, opens and closes periods, books invoice lines and
-- adjustments (append-only by their triggers).
GRANT SELECT, INSERT ON usage_ledger, usage_ledger_event_id TO tokenmeter_sink;
GRANT SELECT, INSERT, UPDATE ON usage_total_hourly, usage_total_monthly, sink_offset, billing_period TO tokenmeter_sink;
GRANT SELECT, INSERT ON sink_dead_letter, invoice_line, invoice_adjustment TO tokenmeter_sink;
GRANT USAGE ON SEQUENCE sink_dead_letter_id_seq, invoice_line_id_seq, invoice_adjustment_id_seq TO tokenmeter_sink;

-- A new month's ledger partition is created by the table's owner: the sink may call the function,
-- which runs with its owner's rights (and a fixed search_path), but cannot CREATE or ALTER tables.
ALTER FUNCTION ensure_usage_ledger_partition(date) SECURITY DEFINER SET search_path FROM CURRENT;
ALTER FUNCTION ensure_usage_ledger_partitions(date, integer) SECURITY DEFINER SET search_path FROM CURRENT;
REVOKE EXECUTE ON FUNCTION ensure_usage_ledger_partition(date), ensure_usage_ledger_partitions(date, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_usage_ledger_partition(date), ensure_usage_ledger_partitions(date, integer) TO tokenmeter_sink;

-- finance: read-only, the statement and reconciliation views and the tables behind them; not the
-- keys (api_key, personal_provider_key).
GRANT SELECT ON monthly_statement, reconciliation, account_limits, plan, account, model_price,
    usage_ledger, usage_total_hourly, usage_total_monthly, billing_period, invoice_line, invoice_adjustment,
    sink_dead_letter
    TO tokenmeter_finance;
