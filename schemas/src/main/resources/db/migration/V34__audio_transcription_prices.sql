-- Transcriptions and translations (issue 16, ADR 0088). OpenAI bills them two ways, and each fits the exact
-- integer formula of ADR 0040/0085 without a new column:
--  * gpt-4o-transcribe and gpt-4o-mini-transcribe by tokens: text input (the prompt), audio input and output (the
--    transcript) tokens, each at its own price. The usage object reports input_tokens with input_token_details
--    .audio_tokens/.text_tokens: audio tokens are part of input_tokens as image tokens are for gpt-image-1, so
--    image_input_nano_usd_per_token prices them — the column is the price of a model's non-text input tokens (a
--    model takes image or audio input, never both at one price).
--  * whisper-1 by the audio's duration, $0.006 per minute = 100,000 nano-USD per second, exact. The answer reports
--    usage {type: duration, seconds}; the edge rounds to the nearest second (halves up), as OpenAI bills, and the
--    event's prompt "tokens" are those seconds — like tts-1's characters (V27_2), input_nano_usd_per_token is then
--    nano-USD per second.
COMMENT ON COLUMN model_price.image_input_nano_usd_per_token IS
    'nano-USD per non-text input token, image (gpt-image-1) or audio (gpt-4o-transcribe); NULL = the input price';

-- OpenAI's list prices per 1M tokens (standard tier): gpt-4o-transcribe text $2.50, audio $6.00, output $10.00;
-- gpt-4o-mini-transcribe text $1.25, audio $3.00, output $5.00. No cached input price.
INSERT INTO model_price (model, effective_from, input_nano_usd_per_token, cached_input_nano_usd_per_token,
                         output_nano_usd_per_token, image_input_nano_usd_per_token, price_version) VALUES
    ('gpt-4o-transcribe', '2025-03-20T00:00:00Z', 2500, NULL, 10000, 6000, 'gpt-4o-transcribe@2025-03-20'),
    ('gpt-4o-mini-transcribe', '2025-03-20T00:00:00Z', 1250, NULL, 5000, 3000, 'gpt-4o-mini-transcribe@2025-03-20'),
    ('whisper-1', '2023-03-01T00:00:00Z', 100000, NULL, NULL, NULL, 'whisper-1@2023-03-01');
