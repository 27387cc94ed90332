-- Images (issue 16, ADR 0085): gpt-image-1 bills three token dimensions: text input, image input (images given
-- to /v1/images/edits) and output (image) tokens. Image input tokens are part of input_tokens in OpenAI's usage
-- object (input_tokens_details.image_tokens), like cached tokens, and get their own price column.
-- NULL: image input tokens cost the input price (every text model, which has no separate image price).
-- (Version 27.1: a second step of the same change, numbered under the session's assigned V27.)
ALTER TABLE model_price
    ADD COLUMN image_input_nano_usd_per_token bigint CHECK (image_input_nano_usd_per_token >= 0);

-- OpenAI's list price for gpt-image-1 (standard tier), per 1M tokens: text input $5.00, cached text input $1.25,
-- image input $10.00, output $40.00 = 5,000 / 1,250 / 10,000 / 40,000 nano-USD per token, all whole.
INSERT INTO model_price (model, effective_from, input_nano_usd_per_token, cached_input_nano_usd_per_token,
                         output_nano_usd_per_token, image_input_nano_usd_per_token, price_version) VALUES
    ('gpt-image-1', '2025-04-23T00:00:00Z', 5000, 1250, 40000, 10000, 'gpt-image-1@2025-04-23');
