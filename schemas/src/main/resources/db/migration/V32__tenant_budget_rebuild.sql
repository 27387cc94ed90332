-- Tenant monthly budgets in the quota engine (issue 17, ADR 0081): the edge rebuilds a tenant's month spend in Redis
-- from the ledger's service-credit rows of that tenant and month (on a tenant's first call of a month per edge and
-- after a Redis loss, not per call). The edge may now read the ledger's tenant_id (V25 granted the other columns of
-- that sum), and an index by tenant serves the sum (one partition per month).
GRANT SELECT (tenant_id) ON usage_ledger TO tokenmeter_edge;
CREATE INDEX IF NOT EXISTS usage_ledger_tenant_idx ON usage_ledger (tenant_id, billing_month);
