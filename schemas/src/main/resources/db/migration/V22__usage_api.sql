-- The usage API (issue 17, ADR 0079): GET /v1/usage and /admin/usage read the billed totals by time range for
-- one user, one tenant or everyone. The primary keys start with user_id, so a tenant's or everyone's range
-- would scan every user's rows: these indexes serve those queries. The edge role reads usage_total_hourly
-- for the 1h and 1d buckets (it already reads usage_total_monthly for its quota baseline).
CREATE INDEX IF NOT EXISTS usage_total_hourly_tenant_hour_idx ON usage_total_hourly (tenant_id, hour_start);
CREATE INDEX IF NOT EXISTS usage_total_hourly_hour_idx ON usage_total_hourly (hour_start);
CREATE INDEX IF NOT EXISTS usage_total_hourly_user_hour_idx ON usage_total_hourly (user_id, hour_start);
CREATE INDEX IF NOT EXISTS usage_total_monthly_tenant_month_idx ON usage_total_monthly (tenant_id, billing_month);
GRANT SELECT ON usage_total_hourly TO tokenmeter_edge;
