-- Grants on V13's table (ADR 0060): the sink's PeriodCloser records and updates the user-months it could not
-- book (upsert); finance reads them. No sequence: the key is (billing_month, user_id).
GRANT SELECT, INSERT, UPDATE ON period_close_failure TO tokenmeter_sink;
GRANT SELECT ON period_close_failure TO tokenmeter_finance;
