-- Moderations (issue 16, ADR 0085): OpenAI does not charge for /v1/moderations, but every call through the edge is
-- still one event. The call is priced like any other, by a row: these rows say $0 per token (no output), so a
-- moderation event costs exactly 0 and names the row that priced it. Should OpenAI ever charge, an operator adds
-- a later row; nothing in the edge changes.
INSERT INTO model_price (model, effective_from, input_nano_usd_per_token, cached_input_nano_usd_per_token, output_nano_usd_per_token, price_version) VALUES
    ('omni-moderation-latest', '2024-09-26T00:00:00Z', 0, NULL, NULL, 'omni-moderation-latest@2024-09-26'),
    ('text-moderation-latest', '2022-08-10T00:00:00Z', 0, NULL, NULL, 'text-moderation-latest@2022-08-10');

-- The snapshot names OpenAI answers with (and callers may pin), priced by their family's row (ADR 0068).
INSERT INTO model_alias (alias, effective_from, model) VALUES
    ('omni-moderation-2024-09-26', '2024-09-26T00:00:00Z', 'omni-moderation-latest'),
    ('text-moderation-stable', '2022-08-10T00:00:00Z', 'text-moderation-latest'),
    ('text-moderation-007', '2022-08-10T00:00:00Z', 'text-moderation-latest');
