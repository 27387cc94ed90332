-- The price card (issue 16, ADR 0068): service tiers on price rows, and model aliases that map the names
-- callers send (dated snapshots such as gpt-4o-mini-2024-07-18) to the model whose rows price them.

-- Tiers. Every existing row is a standard-tier price (OpenAI's list prices, standard tier). A tier's price
-- is its own effective-dated row; OpenAI reports 'default' for standard, the edge maps it.
ALTER TABLE model_price
    ADD COLUMN service_tier text NOT NULL DEFAULT 'standard'
        CHECK (service_tier IN ('standard', 'flex', 'priority', 'batch'));
ALTER TABLE model_price DROP CONSTRAINT model_price_pkey;
ALTER TABLE model_price ADD PRIMARY KEY (model, service_tier, effective_from);

-- The price in force at a point in time, per tier; the two-argument form keeps meaning the standard tier.
DROP FUNCTION model_price_at(text, timestamptz);
CREATE FUNCTION model_price_at(p_model text, p_tier text, p_at timestamptz)
RETURNS SETOF model_price LANGUAGE sql STABLE AS $$
    SELECT * FROM model_price
    WHERE model = p_model AND service_tier = p_tier AND effective_from <= p_at
    ORDER BY effective_from DESC
    LIMIT 1
$$;
CREATE FUNCTION model_price_at(p_model text, p_at timestamptz)
RETURNS SETOF model_price LANGUAGE sql STABLE AS $$
    SELECT * FROM model_price_at(p_model, 'standard', p_at)
$$;

-- Aliases: effective-dated and append-only like prices. 'alias' is an exact model name, or a prefix
-- pattern ending in '*' (gpt-4o-mini-* covers every name starting with gpt-4o-mini-). A name with a price
-- row of its own is priced by it; otherwise the exact alias wins, then the longest matching prefix pattern.
-- The alias in force at a call's time is the newest row of that alias with effective_from <= the call's
-- time; 'model' must be a priced model (no chains): the admin API checks it has a price row.
CREATE TABLE model_alias (
    alias           text        NOT NULL CHECK (alias ~ '^[A-Za-z0-9._:/-]{1,128}[*]?$'),
    effective_from  timestamptz NOT NULL,
    model           text        NOT NULL CHECK (model ~ '^[A-Za-z0-9._:/-]{1,128}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alias, effective_from)
);

CREATE FUNCTION model_alias_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'model_alias rows are immutable; insert a new row with a later effective_from';
END $$;
CREATE TRIGGER model_alias_no_update BEFORE UPDATE OR DELETE ON model_alias
    FOR EACH ROW EXECUTE FUNCTION model_alias_is_append_only();

GRANT SELECT, INSERT ON model_alias TO tokenmeter_edge;
GRANT SELECT ON model_alias TO tokenmeter_finance;

-- OpenAI's dated snapshot names of the families priced in V3 (shared/data/openai-prices.csv lists families
-- only), each at its family's price from that row's effective_from. Exact names only: a prefix pattern such as
-- gpt-4o-* would also cover gpt-4o-2024-05-13, which OpenAI prices differently ($5/$15 per 1M), and the
-- audio/realtime/search previews; operators add patterns deliberately through the admin API.
INSERT INTO model_alias (alias, effective_from, model) VALUES
    ('gpt-5-2025-08-07', '2025-08-07T00:00:00Z', 'gpt-5'),
    ('gpt-5-mini-2025-08-07', '2025-08-07T00:00:00Z', 'gpt-5-mini'),
    ('gpt-5-nano-2025-08-07', '2025-08-07T00:00:00Z', 'gpt-5-nano'),
    ('gpt-4.1-2025-04-14', '2025-04-14T00:00:00Z', 'gpt-4.1'),
    ('gpt-4.1-mini-2025-04-14', '2025-04-14T00:00:00Z', 'gpt-4.1-mini'),
    ('gpt-4.1-nano-2025-04-14', '2025-04-14T00:00:00Z', 'gpt-4.1-nano'),
    ('gpt-4o-2024-08-06', '2024-10-01T00:00:00Z', 'gpt-4o'),
    ('gpt-4o-2024-11-20', '2024-11-20T00:00:00Z', 'gpt-4o'),
    ('gpt-4o-mini-2024-07-18', '2024-07-18T00:00:00Z', 'gpt-4o-mini'),
    ('o3-2025-04-16', '2025-06-10T00:00:00Z', 'o3'),
    ('o4-mini-2025-04-16', '2025-04-16T00:00:00Z', 'o4-mini');
