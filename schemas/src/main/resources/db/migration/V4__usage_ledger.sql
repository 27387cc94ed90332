-- The ledger: one row per distinct usage event, partitioned by billing month (UTC calendar month of
-- occurred_at). Postgres makes a partitioned table's primary key include the partition key, so the
-- (billing_month, event_id) key alone would let a resend with the same id but another timestamp land
-- in a second partition. usage_ledger_event_id is the dedup guard on event_id alone; a writer inserts
-- there and into the ledger in ONE transaction, so the marker exists only together with the row.

CREATE TABLE usage_ledger_event_id (
    event_id       uuid        PRIMARY KEY,
    billing_month  date        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE usage_ledger (
    event_id              uuid        NOT NULL,
    billing_month         date        NOT NULL CHECK (billing_month = date_trunc('month', billing_month)::date),
    occurred_at           timestamptz NOT NULL,
    received_at           timestamptz NOT NULL,
    tenant_id             text        NOT NULL,
    user_id               text        NOT NULL,
    api_key_id            text,
    key_source            text        NOT NULL CHECK (key_source IN ('SERVICE_CREDIT', 'PERSONAL_KEY', 'NONE')),
    provider              text        NOT NULL,
    model                 text        NOT NULL,
    endpoint              text        NOT NULL,
    upstream_request_id   text,
    outcome               text        NOT NULL CHECK (outcome IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'REJECTED')),
    http_status           integer     NOT NULL,
    prompt_tokens         bigint      NOT NULL CHECK (prompt_tokens >= 0),
    cached_prompt_tokens  bigint      NOT NULL CHECK (cached_prompt_tokens >= 0),
    completion_tokens     bigint      NOT NULL CHECK (completion_tokens >= 0),
    reasoning_tokens      bigint      NOT NULL CHECK (reasoning_tokens >= 0),
    cost_nano_usd         bigint      NOT NULL CHECK (cost_nano_usd >= 0),
    price_version         text,
    usage_source          text        NOT NULL CHECK (usage_source IN ('REPORTED', 'ESTIMATED')),
    streamed              boolean     NOT NULL,
    cache_hit             boolean     NOT NULL,
    reservation_id        text,
    latency_ms            bigint      NOT NULL,
    edge_instance         text,
    attributes            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    ingested_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (billing_month, event_id)
) PARTITION BY RANGE (billing_month);

CREATE INDEX usage_ledger_user_idx ON usage_ledger (user_id, billing_month);

-- Creates the partition for one month if it is missing. Serialised by an advisory lock so two
-- writers racing on a new month do not both try to create it.
CREATE FUNCTION ensure_usage_ledger_partition(p_month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m     date := date_trunc('month', p_month)::date;
    name  text := format('usage_ledger_%s', to_char(m, 'YYYY_MM'));
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('usage_ledger_partitions'));
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF usage_ledger FOR VALUES FROM (%L) TO (%L)',
                       name, m, (m + interval '1 month')::date);
    END IF;
    RETURN name;
END $$;

-- Creates partitions from p_from's month through p_months months ahead.
CREATE FUNCTION ensure_usage_ledger_partitions(p_from date, p_months integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 0 .. p_months LOOP
        PERFORM ensure_usage_ledger_partition((date_trunc('month', p_from) + make_interval(months => i))::date);
    END LOOP;
END $$;

-- Partitions for the last year and the year ahead exist from the start; writers call
-- ensure_usage_ledger_partition for any other month before they write into it.
SELECT ensure_usage_ledger_partitions((date_trunc('month', now()) - interval '12 months')::date, 24);
