-- Attribution (issue 17, ADR 0078): a project per service key, labels per call.
--
-- api_key.project: set by the operator through the admin API (never by the caller); the edge copies it into
-- every event of the key (UsageEvent v4 project). NULL = no project.
ALTER TABLE api_key
    ADD COLUMN project text CHECK (project ~ '^[A-Za-z0-9._-]{1,64}$');

-- Ledger: UsageEvent v4's fields. labels is a flat JSON object of strings (keys sorted), '{}' when the call
-- had none (and for rows before V21). Nullable and constant-default columns on the partitioned table:
-- catalog-only changes, no partition is rewritten.
ALTER TABLE usage_ledger
    ADD COLUMN project text,
    ADD COLUMN labels  jsonb NOT NULL DEFAULT '{}'::jsonb;

-- The edge's admin API sets it (PUT /admin/users/{userId}/keys/{apiKeyId}/project); the edge may change no
-- other column of a key but revoked_at (V12).
GRANT UPDATE (project) ON api_key TO tokenmeter_edge;
