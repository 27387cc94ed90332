-- Batch prices (issue 16, ADR 0087). OpenAI's Batch API bills 50 % of the standard price. Half of every V3 input and
-- output price is a whole nano-USD per token, but half of six cached-input prices is not: gpt-5 125, gpt-5-mini 25,
-- gpt-5-nano 5, gpt-4.1-nano 25, gpt-4o-mini 75, o4-mini 275 nano-USD per token. A row may therefore state its
-- prices per a number of tokens: price_divisor. The row's prices are nano-USD per price_divisor tokens, and a call
-- (or a batch line) costs round_half_even(sum of tokens_i x price_i / price_divisor), computed exactly in integers
-- once per call: at most 0.5 nano-USD from the exact fractional cost. Every existing row keeps divisor 1 (its costs
-- are unchanged: the division by 1 is exact). The bound 1000 keeps the numerator's headroom (a long) unchanged in
-- practice and a row readable.
ALTER TABLE model_price
    ADD COLUMN price_divisor smallint NOT NULL DEFAULT 1 CHECK (price_divisor BETWEEN 1 AND 1000);
COMMENT ON COLUMN model_price.price_divisor IS
    'the row''s prices are nano-USD per price_divisor tokens; cost = round_half_even(sum tokens x price / divisor) per call';

-- One batch row per V3 model (shared/data/openai-prices.csv lists standard prices only; batch is 50 % of them),
-- from the standard row's effective_from. Where every half is whole: the halves, divisor 1. Else the standard
-- prices with divisor 2 (the six models above), so the half is exact until the call's one rounding.
INSERT INTO model_price (model, service_tier, effective_from, input_nano_usd_per_token, cached_input_nano_usd_per_token,
                         output_nano_usd_per_token, price_divisor, price_version) VALUES
    ('gpt-5', 'batch', '2025-08-07T00:00:00Z', 1250, 125, 10000, 2, 'gpt-5@2025-08-07:batch'),
    ('gpt-5-mini', 'batch', '2025-08-07T00:00:00Z', 250, 25, 2000, 2, 'gpt-5-mini@2025-08-07:batch'),
    ('gpt-5-nano', 'batch', '2025-08-07T00:00:00Z', 50, 5, 400, 2, 'gpt-5-nano@2025-08-07:batch'),
    ('gpt-4.1', 'batch', '2025-04-14T00:00:00Z', 1000, 250, 4000, 1, 'gpt-4.1@2025-04-14:batch'),
    ('gpt-4.1-mini', 'batch', '2025-04-14T00:00:00Z', 200, 50, 800, 1, 'gpt-4.1-mini@2025-04-14:batch'),
    ('gpt-4.1-nano', 'batch', '2025-04-14T00:00:00Z', 100, 25, 400, 2, 'gpt-4.1-nano@2025-04-14:batch'),
    ('gpt-4o', 'batch', '2024-10-01T00:00:00Z', 1250, 625, 5000, 1, 'gpt-4o@2024-10-01:batch'),
    ('gpt-4o-mini', 'batch', '2024-07-18T00:00:00Z', 150, 75, 600, 2, 'gpt-4o-mini@2024-07-18:batch'),
    ('o3', 'batch', '2025-06-10T00:00:00Z', 1000, 250, 4000, 1, 'o3@2025-06-10:batch'),
    ('o4-mini', 'batch', '2025-04-16T00:00:00Z', 1100, 275, 4400, 2, 'o4-mini@2025-04-16:batch'),
    ('text-embedding-3-small', 'batch', '2024-01-25T00:00:00Z', 10, NULL, NULL, 1, 'text-embedding-3-small@2024-01-25:batch'),
    ('text-embedding-3-large', 'batch', '2024-01-25T00:00:00Z', 65, NULL, NULL, 1, 'text-embedding-3-large@2024-01-25:batch');
