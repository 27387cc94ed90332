-- Effective-dated model prices, in whole nano-USD per token ($1 per 1M tokens = 1,000 nano-USD per token).
-- A new price is a new row with a later effective_from, never an edit: every event names the row
-- that priced it (price_version), so a statement can always be re-derived.
CREATE TABLE model_price (
    model                               text        NOT NULL,
    effective_from                      timestamptz NOT NULL,
    input_nano_usd_per_token            bigint      NOT NULL CHECK (input_nano_usd_per_token >= 0),
    -- NULL: the model has no cached-input price; cached tokens are then billed at the input price.
    cached_input_nano_usd_per_token     bigint      CHECK (cached_input_nano_usd_per_token >= 0),
    -- NULL: the model produces no output tokens (embeddings). Reasoning tokens are billed at this price.
    output_nano_usd_per_token           bigint      CHECK (output_nano_usd_per_token >= 0),
    price_version                       text        NOT NULL UNIQUE,   -- e.g. gpt-4o@2024-10-01
    created_at                          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, effective_from)
);

-- The price in force at a point in time.
CREATE FUNCTION model_price_at(p_model text, p_at timestamptz)
RETURNS SETOF model_price LANGUAGE sql STABLE AS $$
    SELECT * FROM model_price
    WHERE model = p_model AND effective_from <= p_at
    ORDER BY effective_from DESC
    LIMIT 1
$$;

-- Trigger guard: prices are append-only.
CREATE FUNCTION model_price_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'model_price rows are immutable; insert a new row with a later effective_from';
END $$;
CREATE TRIGGER model_price_no_update BEFORE UPDATE OR DELETE ON model_price
    FOR EACH ROW EXECUTE FUNCTION model_price_is_append_only();
