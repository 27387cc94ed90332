-- The usage API groups by project_id and by a rollup dimension (issue 17, ADR 0079): GET /v1/usage and /admin/usage
-- read the attribution rollups (V24) for those. The edge role only reads them. The primary keys start with user_id;
-- these indexes serve a tenant's or everyone's range of one dimension, and the edge's "is this a dimension" probe.
GRANT SELECT ON usage_rollup_daily, usage_rollup_monthly TO tokenmeter_edge;
CREATE INDEX IF NOT EXISTS usage_rollup_daily_tenant_dim_day_idx ON usage_rollup_daily (tenant_id, dimension, day);
CREATE INDEX IF NOT EXISTS usage_rollup_daily_dim_day_idx ON usage_rollup_daily (dimension, day);
CREATE INDEX IF NOT EXISTS usage_rollup_monthly_dim_month_idx ON usage_rollup_monthly (dimension, billing_month);
CREATE INDEX IF NOT EXISTS usage_rollup_monthly_tenant_dim_month_idx ON usage_rollup_monthly (tenant_id, dimension, billing_month);
