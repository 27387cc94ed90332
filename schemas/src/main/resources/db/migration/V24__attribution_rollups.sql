-- Attribution rollups (issue 17, ADR 0078): the aggregator's daily and monthly totals per user, project and
-- label dimension value (topic usage-rollups), written by the billing sink like usage_total_*: upserted only
-- by a higher revision, so a redelivered or reordered older rollup never overwrites a newer one.
-- project '' = the key had none; dimension '(all)' = the per-project total; value '(none)' = the call had no
-- such label, '(other)' = a value past ROLLUP_MAX_VALUES_PER_USER in that user's month.

CREATE TABLE usage_rollup_daily (
    user_id            text        NOT NULL,
    project            text        NOT NULL,
    dimension          text        NOT NULL,
    value              text        NOT NULL,
    day                date        NOT NULL,
    tenant_id          text        NOT NULL,
    event_count        bigint      NOT NULL,
    prompt_tokens      bigint      NOT NULL,
    completion_tokens  bigint      NOT NULL,
    cost_nano_usd      bigint      NOT NULL,
    revision           bigint      NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, project, dimension, value, day)
);

CREATE TABLE usage_rollup_monthly (
    user_id            text        NOT NULL,
    project            text        NOT NULL,
    dimension          text        NOT NULL,
    value              text        NOT NULL,
    billing_month      date        NOT NULL CHECK (billing_month = date_trunc('month', billing_month)::date),
    tenant_id          text        NOT NULL,
    event_count        bigint      NOT NULL,
    prompt_tokens      bigint      NOT NULL,
    completion_tokens  bigint      NOT NULL,
    cost_nano_usd      bigint      NOT NULL,
    revision           bigint      NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, project, dimension, value, billing_month)
);
CREATE INDEX usage_rollup_monthly_month_idx ON usage_rollup_monthly (billing_month, dimension);

-- The sink writes them (the role of V12), finance and analysts read them.
GRANT SELECT, INSERT, UPDATE ON usage_rollup_daily, usage_rollup_monthly TO tokenmeter_sink;

-- For finance: per user, month and dimension, the rollups' sum next to the ledger's. Every dimension's values
-- (including '(none)' and '(other)') and every project add up to the ledger's total of that user and month, so
-- cost_difference_nano_usd and event_difference are 0 once the aggregator and the sink have caught up with the
-- ledger (seconds in an open month).
CREATE VIEW reconciliation_rollup AS
WITH rolled AS (
    SELECT user_id, billing_month, dimension, sum(cost_nano_usd)::bigint AS rollup_cost_nano_usd,
           sum(event_count)::bigint AS rollup_events, count(*) AS rollup_rows
    FROM usage_rollup_monthly
    GROUP BY user_id, billing_month, dimension
), ledger AS (
    SELECT user_id, billing_month, sum(cost_nano_usd)::bigint AS ledger_cost_nano_usd, count(*) AS ledger_events
    FROM usage_ledger
    GROUP BY user_id, billing_month
)
SELECT r.user_id, r.billing_month, r.dimension, r.rollup_rows,
       r.rollup_cost_nano_usd, coalesce(l.ledger_cost_nano_usd, 0) AS ledger_cost_nano_usd,
       r.rollup_cost_nano_usd - coalesce(l.ledger_cost_nano_usd, 0) AS cost_difference_nano_usd,
       r.rollup_events, coalesce(l.ledger_events, 0) AS ledger_events,
       r.rollup_events - coalesce(l.ledger_events, 0) AS event_difference
FROM rolled r
LEFT JOIN ledger l ON l.user_id = r.user_id AND l.billing_month = r.billing_month;
