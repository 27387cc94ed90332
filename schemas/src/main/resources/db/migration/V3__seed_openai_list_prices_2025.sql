-- OpenAI list prices (standard tier) per token, as published in 2025; source: shared/data/openai-prices.csv.
-- USD per 1M tokens x 1,000 = nano-USD per token, exact for every row (checked when this file was written).
INSERT INTO model_price (model, effective_from, input_nano_usd_per_token, cached_input_nano_usd_per_token, output_nano_usd_per_token, price_version) VALUES
    ('gpt-5', '2025-08-07T00:00:00Z', 1250, 125, 10000, 'gpt-5@2025-08-07'),
    ('gpt-5-mini', '2025-08-07T00:00:00Z', 250, 25, 2000, 'gpt-5-mini@2025-08-07'),
    ('gpt-5-nano', '2025-08-07T00:00:00Z', 50, 5, 400, 'gpt-5-nano@2025-08-07'),
    ('gpt-4.1', '2025-04-14T00:00:00Z', 2000, 500, 8000, 'gpt-4.1@2025-04-14'),
    ('gpt-4.1-mini', '2025-04-14T00:00:00Z', 400, 100, 1600, 'gpt-4.1-mini@2025-04-14'),
    ('gpt-4.1-nano', '2025-04-14T00:00:00Z', 100, 25, 400, 'gpt-4.1-nano@2025-04-14'),
    ('gpt-4o', '2024-10-01T00:00:00Z', 2500, 1250, 10000, 'gpt-4o@2024-10-01'),
    ('gpt-4o-mini', '2024-07-18T00:00:00Z', 150, 75, 600, 'gpt-4o-mini@2024-07-18'),
    ('o3', '2025-06-10T00:00:00Z', 2000, 500, 8000, 'o3@2025-06-10'),
    ('o4-mini', '2025-04-16T00:00:00Z', 1100, 275, 4400, 'o4-mini@2025-04-16'),
    ('text-embedding-3-small', '2024-01-25T00:00:00Z', 20, NULL, NULL, 'text-embedding-3-small@2024-01-25'),
    ('text-embedding-3-large', '2024-01-25T00:00:00Z', 130, NULL, NULL, 'text-embedding-3-large@2024-01-25');
