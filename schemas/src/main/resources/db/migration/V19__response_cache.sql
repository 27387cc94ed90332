-- The edge's response cache (issue 19, ADR 0074 safety, ADR 0075 prices).
--
-- Ledger: UsageEvent v3's fields. cost_nano_usd stays what the call is billed (so every total, the
-- statement's sums and the reconciliation view are unchanged and exact); upstream_cost_nano_usd is what
-- the upstream charged: 0 for a cache hit. NULL (rows before V19, v1/v2 events are written with their
-- cost) means equal to cost_nano_usd. Constant defaults and nullable columns: catalog-only changes, no
-- partition is rewritten.
ALTER TABLE usage_ledger
    ADD COLUMN response_cache_hit     boolean NOT NULL DEFAULT false,
    ADD COLUMN response_cache_age_ms  bigint  CHECK (response_cache_age_ms >= 0),
    ADD COLUMN upstream_cost_nano_usd bigint  CHECK (upstream_cost_nano_usd >= 0);
CREATE INDEX usage_ledger_response_cache_hit_idx ON usage_ledger (billing_month, user_id) WHERE response_cache_hit;

-- Per plan: the cache is off unless response_cache_ttl_seconds is set (1 s .. 30 days). Only requests
-- that can be answered again are cached (temperature 0 or a seed; embeddings), unless
-- response_cache_any_request. A hit is billed cache_hit_price_percent of the full price of the cached
-- answer's usage: 100 = full price, 0 = free (ADR 0075).
ALTER TABLE plan
    ADD COLUMN response_cache_ttl_seconds  integer CHECK (response_cache_ttl_seconds BETWEEN 1 AND 2592000),
    ADD COLUMN response_cache_any_request  boolean NOT NULL DEFAULT false,
    ADD COLUMN cache_hit_price_percent     integer NOT NULL DEFAULT 100 CHECK (cache_hit_price_percent BETWEEN 0 AND 100);

-- Per key: NULL = the plan decides; 'off' = never for this key; 'on' = cacheable requests, with the
-- plan's TTL or the edge's RESPONSE_CACHE_DEFAULT_TTL; 'any' = any request of the endpoints cached.
ALTER TABLE api_key
    ADD COLUMN response_cache text CHECK (response_cache IN ('off', 'on', 'any'));

-- The statement: cache hits are their own line kind. A USAGE line (invoice line or running monthly
-- total) is split into CACHE_HIT, the ledger's hits of that month, user, model and key source, and
-- USAGE, the rest; the two always add up to the line they came from, so every sum stays exact. The
-- split follows the ledger, which may run ahead of or behind the aggregator's totals by a few seconds
-- in an open period (ADR 0075).
CREATE OR REPLACE VIEW monthly_statement AS
WITH base AS (
    SELECT l.billing_month, l.user_id, l.tenant_id, l.model, l.key_source, 'USAGE'::text AS line_kind,
           NULL::date AS applies_to_month, l.event_count, l.prompt_tokens, l.cached_prompt_tokens,
           l.completion_tokens, l.reasoning_tokens, l.cost_nano_usd
    FROM invoice_line l
    UNION ALL
    SELECT t.billing_month, t.user_id, t.tenant_id, t.model, t.key_source, 'USAGE', NULL, t.event_count,
           t.prompt_tokens, t.cached_prompt_tokens, t.completion_tokens, t.reasoning_tokens, t.cost_nano_usd
    FROM usage_total_monthly t
    WHERE NOT EXISTS (SELECT 1 FROM billing_period p WHERE p.billing_month = t.billing_month AND p.closed_at IS NOT NULL)
    UNION ALL
    SELECT a.billing_month, a.user_id, a.tenant_id, a.model, a.key_source, 'ADJUSTMENT', a.applies_to_month,
           a.event_count, a.prompt_tokens, a.cached_prompt_tokens, a.completion_tokens, a.reasoning_tokens, a.cost_nano_usd
    FROM invoice_adjustment a
), hits AS (
    SELECT billing_month, user_id, model, key_source, count(*)::bigint AS event_count,
           sum(prompt_tokens)::bigint AS prompt_tokens, sum(cached_prompt_tokens)::bigint AS cached_prompt_tokens,
           sum(completion_tokens)::bigint AS completion_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
           sum(cost_nano_usd)::bigint AS cost_nano_usd
    FROM usage_ledger WHERE response_cache_hit
    GROUP BY billing_month, user_id, model, key_source
), lines AS (
    SELECT b.billing_month, b.user_id, b.tenant_id, b.model, b.key_source, b.line_kind, b.applies_to_month,
           b.event_count - coalesce(h.event_count, 0) AS event_count,
           b.prompt_tokens - coalesce(h.prompt_tokens, 0) AS prompt_tokens,
           b.cached_prompt_tokens - coalesce(h.cached_prompt_tokens, 0) AS cached_prompt_tokens,
           b.completion_tokens - coalesce(h.completion_tokens, 0) AS completion_tokens,
           b.reasoning_tokens - coalesce(h.reasoning_tokens, 0) AS reasoning_tokens,
           b.cost_nano_usd - coalesce(h.cost_nano_usd, 0) AS cost_nano_usd
    FROM base b
    LEFT JOIN hits h ON b.line_kind = 'USAGE' AND h.billing_month = b.billing_month AND h.user_id = b.user_id
                    AND h.model = b.model AND h.key_source = b.key_source
    UNION ALL
    SELECT b.billing_month, b.user_id, b.tenant_id, b.model, b.key_source, 'CACHE_HIT', NULL, h.event_count,
           h.prompt_tokens, h.cached_prompt_tokens, h.completion_tokens, h.reasoning_tokens, h.cost_nano_usd
    FROM base b
    JOIN hits h ON b.line_kind = 'USAGE' AND h.billing_month = b.billing_month AND h.user_id = b.user_id
               AND h.model = b.model AND h.key_source = b.key_source
)
SELECT l.billing_month,
       (p.closed_at IS NOT NULL)                                   AS period_closed,
       l.user_id, l.tenant_id, l.model, l.key_source, l.line_kind, l.applies_to_month,
       l.event_count                                               AS requests,
       l.prompt_tokens, l.cached_prompt_tokens, l.completion_tokens, l.reasoning_tokens,
       l.prompt_tokens + l.completion_tokens                       AS total_tokens,
       l.cost_nano_usd,
       (l.cost_nano_usd::numeric * 0.000000001)::numeric(30, 9)    AS cost_usd,
       (CASE WHEN l.key_source = 'SERVICE_CREDIT' THEN l.cost_nano_usd ELSE 0 END::numeric * 0.000000001)::numeric(30, 9)
                                                                   AS credit_used_usd,
       (CASE WHEN l.key_source = 'PERSONAL_KEY' THEN l.cost_nano_usd ELSE 0 END::numeric * 0.000000001)::numeric(30, 9)
                                                                   AS own_key_usd
FROM lines l
LEFT JOIN billing_period p ON p.billing_month = l.billing_month;
