-- Spend controls (issue 17, ADR 0077): model allow-lists per plan and per service key, a per-key monthly
-- budget and expiry, and a monthly budget per tenant. Nullable columns without defaults: catalog-only
-- changes, no table is rewritten. NULL means "no limit of this kind".

-- Allow-lists: NULL (or an empty array) = every model allowed; when both the plan's and the key's are
-- set a model must be on both. An entry admits that name and every name the price card resolves to it
-- through model_alias (dated snapshots), never a name only DEFAULT_PRICE_MODEL prices. Bounds (checked
-- by the admin API too): at most 100 entries of 1..100 characters.
ALTER TABLE plan
    ADD COLUMN allowed_models text[] CHECK (cardinality(allowed_models) <= 100);

ALTER TABLE api_key
    ADD COLUMN allowed_models          text[]      CHECK (cardinality(allowed_models) <= 100),
    -- The key's own monthly budget, on top of its user's credit (a call must fit both).
    ADD COLUMN monthly_budget_nano_usd bigint      CHECK (monthly_budget_nano_usd >= 0),
    -- From this instant the key is refused with 401 api_key_expired.
    ADD COLUMN expires_at              timestamptz;

-- A monthly credit shared by every user of the tenant (a call must fit its user's and its tenant's).
CREATE TABLE tenant_budget (
    tenant_id               text        PRIMARY KEY,
    monthly_budget_nano_usd bigint      NOT NULL CHECK (monthly_budget_nano_usd >= 0),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- The edge's admin API sets all of these (plan: INSERT, UPDATE granted by V12).
GRANT UPDATE (allowed_models, monthly_budget_nano_usd, expires_at) ON api_key TO tokenmeter_edge;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_budget TO tokenmeter_edge;
GRANT SELECT ON tenant_budget TO tokenmeter_finance;
