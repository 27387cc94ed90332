-- Reconciliation with OpenAI's bill, part two (issue 16, ADR 0086 amended): images, speech, transcriptions and
-- moderations. The billing sink's upstream reconciler now also reads the organization Usage API's
-- /usage/images, /usage/audio_speeches, /usage/audio_transcriptions and /usage/moderations (daily, by model), and
-- the Costs API's line items of those models ('gpt-image-1, image input', 'tts-1, characters', 'whisper-1, seconds',
-- ...) arrive with the others. The view compares them per day and model like the token endpoints: requests and cost
-- on each side. Tokens are compared only where both sides count the same tokens (completions, chat, responses,
-- embeddings): OpenAI's media usage reports images, characters or seconds, and a moderation's tokens are the
-- edge's estimate (OpenAI answers none), so a media model's token columns are 0 on both sides.

ALTER TABLE upstream_usage_bucket DROP CONSTRAINT upstream_usage_bucket_source_check;
ALTER TABLE upstream_usage_bucket ADD CONSTRAINT upstream_usage_bucket_source_check
    CHECK (source IN ('completions', 'embeddings', 'images', 'audio_speeches', 'audio_transcriptions', 'moderations'));

-- What the media endpoints count instead of tokens: images (images), characters (audio_speeches), seconds
-- (audio_transcriptions); 0 for the token sources. Stored for finance's questions, not compared by the view
-- (our ledger counts gpt-image-1 and gpt-4o-*-transcribe in tokens, not images or seconds).
-- A moderation's input_tokens (OpenAI's count) are stored in input_tokens.
ALTER TABLE upstream_usage_bucket ADD COLUMN units bigint NOT NULL DEFAULT 0 CHECK (units >= 0);

-- Same columns as V26's; our side now includes the media endpoints (their tokens counted as 0), the upstream's
-- tokens come only from the token sources.
CREATE OR REPLACE VIEW upstream_reconciliation AS
WITH ours AS (
    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, coalesce(answered_model, model) AS model,
           count(*)::bigint AS requests,
           sum(CASE WHEN tokens_compared THEN prompt_tokens ELSE 0 END)::bigint AS input_tokens,
           sum(CASE WHEN tokens_compared THEN cached_prompt_tokens ELSE 0 END)::bigint AS cached_input_tokens,
           sum(CASE WHEN tokens_compared THEN completion_tokens ELSE 0 END)::bigint AS output_tokens,
           sum(coalesce(upstream_cost_nano_usd, cost_nano_usd))::bigint AS cost_nano_usd
    FROM (SELECT l.*, endpoint ~ '(chat/completions|/completions|/responses|/embeddings)$' AS tokens_compared
          FROM usage_ledger l
          WHERE key_source = 'SERVICE_CREDIT' AND outcome = 'SUCCEEDED' AND NOT response_cache_hit
            AND endpoint ~ '(chat/completions|/completions|/responses|/embeddings|/images/generations|/images/edits|/audio/speech|/audio/transcriptions|/audio/translations|/moderations)$'
            AND (occurred_at AT TIME ZONE 'UTC')::date IN (SELECT day FROM upstream_read_day)) l
    GROUP BY 1, 2
), usage AS (
    SELECT day, model, sum(requests)::bigint AS requests,
           sum(CASE WHEN source IN ('completions', 'embeddings') THEN input_tokens ELSE 0 END)::bigint AS input_tokens,
           sum(CASE WHEN source IN ('completions', 'embeddings') THEN cached_input_tokens ELSE 0 END)::bigint AS cached_input_tokens,
           sum(CASE WHEN source IN ('completions', 'embeddings') THEN output_tokens ELSE 0 END)::bigint AS output_tokens
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
