-- Reconciliation with OpenAI's own bill (issue 16, ADR 0086).
--
-- The billing sink's upstream reconciler reads OpenAI's organization Usage API (completions, embeddings) and
-- Costs API in daily UTC buckets and stores what it read here. Each read of a bucket replaces that bucket's
-- rows in one transaction (delete + insert), so re-reading a late bucket is idempotent and a group that
-- vanished upstream does not linger. upstream_read_day records which days were read completely: the view
-- compares only those, so a day not read yet is not shown as a difference.

CREATE TABLE upstream_usage_bucket (
    source               text        NOT NULL CHECK (source IN ('completions', 'embeddings')),
    day                  date        NOT NULL,
    model                text        NOT NULL CHECK (length(model) <= 200),
    project_id           text        NOT NULL DEFAULT '' CHECK (length(project_id) <= 200),
    requests             bigint      NOT NULL CHECK (requests >= 0),
    input_tokens         bigint      NOT NULL CHECK (input_tokens >= 0),
    cached_input_tokens  bigint      NOT NULL CHECK (cached_input_tokens >= 0),
    output_tokens        bigint      NOT NULL CHECK (output_tokens >= 0),
    read_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, day, model, project_id)
);

-- Costs API line items ('gpt-4o-mini-2024-07-18, input', ', cached input', ', output'); model is the part
-- before the last ', ' (the whole line item when there is none). Amounts are OpenAI's decimal USD converted
-- exactly to nano-USD; a value with more than 9 decimal places is refused by the reader, never rounded.
CREATE TABLE upstream_cost_bucket (
    day            date        NOT NULL,
    line_item      text        NOT NULL CHECK (length(line_item) <= 300),
    project_id     text        NOT NULL DEFAULT '' CHECK (length(project_id) <= 200),
    model          text        NOT NULL CHECK (length(model) <= 200),
    cost_nano_usd  bigint      NOT NULL,
    read_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, line_item, project_id)
);

CREATE TABLE upstream_read_day (
    day      date        PRIMARY KEY,
    read_at  timestamptz NOT NULL DEFAULT now()
);

-- Per UTC day and model (the model the upstream answered with, as OpenAI reports it): our side is the ledger's
-- calls on the service's credit that reached the upstream (SUCCEEDED, not answered from the response cache;
-- users' own keys are billed to them by OpenAI and are out of scope), at the upstream's cost
-- (upstream_cost_nano_usd, or cost_nano_usd for rows before V19). Only the endpoints whose usage is read
-- (completions, chat, responses, embeddings) are compared; images, audio and moderations are not read yet.
-- Differences are upstream minus ours.
CREATE VIEW upstream_reconciliation AS
WITH ours AS (
    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, coalesce(answered_model, model) AS model,
           count(*)::bigint AS requests, sum(prompt_tokens)::bigint AS input_tokens,
           sum(cached_prompt_tokens)::bigint AS cached_input_tokens, sum(completion_tokens)::bigint AS output_tokens,
           sum(coalesce(upstream_cost_nano_usd, cost_nano_usd))::bigint AS cost_nano_usd
    FROM usage_ledger
    WHERE key_source = 'SERVICE_CREDIT' AND outcome = 'SUCCEEDED' AND NOT response_cache_hit
      AND endpoint ~ '(chat/completions|/completions|/responses|/embeddings)$'
      AND (occurred_at AT TIME ZONE 'UTC')::date IN (SELECT day FROM upstream_read_day)
    GROUP BY 1, 2
), usage AS (
    SELECT day, model, sum(requests)::bigint AS requests, sum(input_tokens)::bigint AS input_tokens,
           sum(cached_input_tokens)::bigint AS cached_input_tokens, sum(output_tokens)::bigint AS output_tokens
    FROM upstream_usage_bucket GROUP BY 1, 2
), cost AS (
    SELECT day, model, sum(cost_nano_usd)::bigint AS cost_nano_usd FROM upstream_cost_bucket GROUP BY 1, 2
), keys AS (
    SELECT day, model FROM ours UNION SELECT day, model FROM usage UNION SELECT day, model FROM cost
)
SELECT k.day, k.model,
       coalesce(o.requests, 0)            AS ours_requests,
       coalesce(u.requests, 0)            AS upstream_requests,
       coalesce(o.input_tokens, 0)        AS ours_input_tokens,
       coalesce(u.input_tokens, 0)        AS upstream_input_tokens,
       coalesce(o.cached_input_tokens, 0) AS ours_cached_input_tokens,
       coalesce(u.cached_input_tokens, 0) AS upstream_cached_input_tokens,
       coalesce(o.output_tokens, 0)       AS ours_output_tokens,
       coalesce(u.output_tokens, 0)       AS upstream_output_tokens,
       coalesce(o.cost_nano_usd, 0)       AS ours_cost_nano_usd,
       coalesce(c.cost_nano_usd, 0)       AS upstream_cost_nano_usd,
       coalesce(u.requests, 0) - coalesce(o.requests, 0)                       AS requests_difference,
       coalesce(u.input_tokens, 0) - coalesce(o.input_tokens, 0)               AS input_tokens_difference,
       coalesce(u.cached_input_tokens, 0) - coalesce(o.cached_input_tokens, 0) AS cached_input_tokens_difference,
       coalesce(u.output_tokens, 0) - coalesce(o.output_tokens, 0)             AS output_tokens_difference,
       coalesce(c.cost_nano_usd, 0) - coalesce(o.cost_nano_usd, 0)             AS cost_nano_usd_difference
FROM keys k
LEFT JOIN ours o ON o.day = k.day AND o.model = k.model
LEFT JOIN usage u ON u.day = k.day AND u.model = k.model
LEFT JOIN cost c ON c.day = k.day AND c.model = k.model;

GRANT SELECT, INSERT, UPDATE, DELETE ON upstream_usage_bucket, upstream_cost_bucket, upstream_read_day TO tokenmeter_sink;
GRANT SELECT ON upstream_reconciliation TO tokenmeter_sink;
GRANT SELECT ON upstream_usage_bucket, upstream_cost_bucket, upstream_read_day, upstream_reconciliation TO tokenmeter_finance;
