-- Speech (issue 16, ADR 0085): OpenAI bills tts-1 and tts-1-hd by the characters of the input ($15 and $30 per
-- 1M characters), and its /v1/audio/speech answer is audio with no usage object. The edge counts the input's
-- characters (Unicode code points, exactly) and bills them as the call's prompt "tokens": a row's input price is
-- then nano-USD per character (15,000 and 30,000, whole). gpt-4o-mini-tts (billed by audio output tokens that the
-- answer does not report) has no row: it is refused as model_not_found until it can be billed exactly.
INSERT INTO model_price (model, effective_from, input_nano_usd_per_token, cached_input_nano_usd_per_token, output_nano_usd_per_token, price_version) VALUES
    ('tts-1', '2023-11-06T00:00:00Z', 15000, NULL, NULL, 'tts-1@2023-11-06'),
    ('tts-1-hd', '2023-11-06T00:00:00Z', 30000, NULL, NULL, 'tts-1-hd@2023-11-06');
