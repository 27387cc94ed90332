-- Totals from the aggregator, per (user, model, key source). Each row carries the aggregator's
-- revision; writers upsert with "WHERE stored.revision < new.revision", so a redelivered or
-- reordered older total never overwrites a newer one.

CREATE TABLE usage_total_hourly (
    user_id               text        NOT NULL,
    model                 text        NOT NULL,
    key_source            text        NOT NULL,
    hour_start            timestamptz NOT NULL,
    tenant_id             text        NOT NULL,
    event_count           bigint      NOT NULL,
    succeeded_count       bigint      NOT NULL,
    failed_count          bigint      NOT NULL,
    cancelled_count       bigint      NOT NULL,
    rejected_count        bigint      NOT NULL,
    prompt_tokens         bigint      NOT NULL,
    cached_prompt_tokens  bigint      NOT NULL,
    completion_tokens     bigint      NOT NULL,
    reasoning_tokens      bigint      NOT NULL,
    cost_nano_usd         bigint      NOT NULL,
    first_event_at        timestamptz,
    last_event_at         timestamptz,
    revision              bigint      NOT NULL,
    is_final              boolean     NOT NULL DEFAULT false,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, model, key_source, hour_start)
);

CREATE TABLE usage_total_monthly (
    user_id               text        NOT NULL,
    model                 text        NOT NULL,
    key_source            text        NOT NULL,
    billing_month         date        NOT NULL CHECK (billing_month = date_trunc('month', billing_month)::date),
    tenant_id             text        NOT NULL,
    event_count           bigint      NOT NULL,
    succeeded_count       bigint      NOT NULL,
    failed_count          bigint      NOT NULL,
    cancelled_count       bigint      NOT NULL,
    rejected_count        bigint      NOT NULL,
    prompt_tokens         bigint      NOT NULL,
    cached_prompt_tokens  bigint      NOT NULL,
    completion_tokens     bigint      NOT NULL,
    reasoning_tokens      bigint      NOT NULL,
    cost_nano_usd         bigint      NOT NULL,
    first_event_at        timestamptz,
    last_event_at         timestamptz,
    revision              bigint      NOT NULL,
    is_final              boolean     NOT NULL DEFAULT false,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, model, key_source, billing_month)
);
CREATE INDEX usage_total_monthly_month_idx ON usage_total_monthly (billing_month);

-- Records that could not be decoded or failed validation, kept with the reason; nothing is skipped silently.
CREATE TABLE sink_dead_letter (
    id              bigserial   PRIMARY KEY,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    record_key      bytea,
    record_value    bytea,
    reason          text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, kafka_partition, kafka_offset)
);
