-- Per-key monthly budgets (issue 17, ADR 0081): the edge rebuilds a key's month spend in Redis from the ledger (the
-- monthly totals have no key column) and, under QUOTA_FAILURE_POLICY=FAIL_TO_DATABASE, checks it there. Only the
-- columns that sum takes (reservation_id: what FAIL_TO_DATABASE settled and the sink has not written yet): the edge
-- never reads request detail or attributes of the ledger.
GRANT SELECT (user_id, billing_month, api_key_id, key_source, cost_nano_usd, reservation_id) ON usage_ledger TO tokenmeter_edge;
