-- UsageEvent v2 (ADR 0068): the model named in the upstream's answer (OpenAI answers with the dated
-- snapshot) and the price tier the call was billed at. A v1 event has neither: its answered_model stays
-- NULL and its tier is 'standard', the only tier prices existed for before v2. Constant defaults on a
-- partitioned table are catalog-only changes: no partition is rewritten.
ALTER TABLE usage_ledger
    ADD COLUMN answered_model text,
    ADD COLUMN service_tier   text NOT NULL DEFAULT 'standard'
        CHECK (service_tier IN ('standard', 'flex', 'priority', 'batch'));
