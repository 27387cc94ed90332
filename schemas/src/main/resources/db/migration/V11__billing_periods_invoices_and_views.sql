-- Finance: billing periods, immutable invoice lines, adjustments, the monthly statement and the
-- reconciliation view (issue 6; ADR 0030).
--
-- A billing period is one UTC calendar month. It closes at closes_at (the month's end plus a grace);
-- the billing sink's PeriodCloser then snapshots usage_total_monthly into invoice_line and sets
-- closed_at. Invoice lines and adjustments are never updated or deleted (triggers below); usage that
-- arrives for a closed month afterwards is booked as an invoice_adjustment in the next open period.

CREATE TABLE billing_period (
    billing_month  date        PRIMARY KEY CHECK (billing_month = date_trunc('month', billing_month)::date),
    closes_at      timestamptz NOT NULL,
    closed_at      timestamptz
);

CREATE TABLE invoice_line (
    id                    bigserial   PRIMARY KEY,
    billing_month         date        NOT NULL REFERENCES billing_period (billing_month),
    user_id               text        NOT NULL,
    tenant_id             text        NOT NULL,
    model                 text        NOT NULL,
    key_source            text        NOT NULL,
    event_count           bigint      NOT NULL,
    prompt_tokens         bigint      NOT NULL,
    cached_prompt_tokens  bigint      NOT NULL,
    completion_tokens     bigint      NOT NULL,
    reasoning_tokens      bigint      NOT NULL,
    cost_nano_usd         bigint      NOT NULL,
    total_revision        bigint      NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (billing_month, user_id, model, key_source)
);

-- A correction booked in an open period (billing_month) for usage of an earlier, closed month
-- (applies_to_month): the ledger's amounts minus what the closed lines and earlier adjustments billed.
-- Amounts may be negative (a credit) if a closed line billed more than the ledger holds.
CREATE TABLE invoice_adjustment (
    id                    bigserial   PRIMARY KEY,
    billing_month         date        NOT NULL REFERENCES billing_period (billing_month),
    applies_to_month      date        NOT NULL REFERENCES billing_period (billing_month),
    user_id               text        NOT NULL,
    tenant_id             text        NOT NULL,
    model                 text        NOT NULL,
    key_source            text        NOT NULL,
    event_count           bigint      NOT NULL,
    prompt_tokens         bigint      NOT NULL,
    cached_prompt_tokens  bigint      NOT NULL,
    completion_tokens     bigint      NOT NULL,
    reasoning_tokens      bigint      NOT NULL,
    cost_nano_usd         bigint      NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (applies_to_month < billing_month)
);
CREATE INDEX invoice_adjustment_applies_idx ON invoice_adjustment (applies_to_month, user_id, model, key_source);

CREATE FUNCTION refuse_change_of_booked_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable once booked (% refused); book an invoice_adjustment instead', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER invoice_line_immutable BEFORE UPDATE OR DELETE ON invoice_line
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_booked_rows();
CREATE TRIGGER invoice_line_no_truncate BEFORE TRUNCATE ON invoice_line
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_booked_rows();
CREATE TRIGGER invoice_adjustment_immutable BEFORE UPDATE OR DELETE ON invoice_adjustment
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_booked_rows();
CREATE TRIGGER invoice_adjustment_no_truncate BEFORE TRUNCATE ON invoice_adjustment
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_booked_rows();

-- A closed period stays closed: closed_at is set once, and neither it nor the month changes after.
CREATE FUNCTION refuse_reopening_period() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'billing period % is closed (% refused)', OLD.billing_month, TG_OP USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.billing_month <> OLD.billing_month THEN
        RAISE EXCEPTION 'billing_month of a period cannot change' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER billing_period_closed_is_final BEFORE UPDATE OR DELETE ON billing_period
    FOR EACH ROW EXECUTE FUNCTION refuse_reopening_period();

-- The statement finance reads: per period, user, model and key source. Closed periods show their
-- invoice lines; open periods show the running monthly totals; adjustments booked in a period appear
-- in it as line_kind ADJUSTMENT (applies_to_month says which month they correct). Dollars are exact:
-- numeric multiplication of the nano-USD integer, never a float.
CREATE VIEW monthly_statement AS
WITH lines AS (
    SELECT l.billing_month, l.user_id, l.tenant_id, l.model, l.key_source, 'USAGE'::text AS line_kind,
           NULL::date AS applies_to_month, l.event_count, l.prompt_tokens, l.cached_prompt_tokens,
           l.completion_tokens, l.reasoning_tokens, l.cost_nano_usd
    FROM invoice_line l
    UNION ALL
    SELECT t.billing_month, t.user_id, t.tenant_id, t.model, t.key_source, 'USAGE', NULL, t.event_count,
           t.prompt_tokens, t.cached_prompt_tokens, t.completion_tokens, t.reasoning_tokens, t.cost_nano_usd
    FROM usage_total_monthly t
    WHERE NOT EXISTS (SELECT 1 FROM billing_period p WHERE p.billing_month = t.billing_month AND p.closed_at IS NOT NULL)
    UNION ALL
    SELECT a.billing_month, a.user_id, a.tenant_id, a.model, a.key_source, 'ADJUSTMENT', a.applies_to_month,
           a.event_count, a.prompt_tokens, a.cached_prompt_tokens, a.completion_tokens, a.reasoning_tokens, a.cost_nano_usd
    FROM invoice_adjustment a
)
SELECT l.billing_month,
       (p.closed_at IS NOT NULL)                                   AS period_closed,
       l.user_id, l.tenant_id, l.model, l.key_source, l.line_kind, l.applies_to_month,
       l.event_count                                               AS requests,
       l.prompt_tokens, l.cached_prompt_tokens, l.completion_tokens, l.reasoning_tokens,
       l.prompt_tokens + l.completion_tokens                       AS total_tokens,
       l.cost_nano_usd,
       (l.cost_nano_usd::numeric * 0.000000001)::numeric(30, 9)    AS cost_usd,
       (CASE WHEN l.key_source = 'SERVICE_CREDIT' THEN l.cost_nano_usd ELSE 0 END::numeric * 0.000000001)::numeric(30, 9)
                                                                   AS credit_used_usd,
       (CASE WHEN l.key_source = 'PERSONAL_KEY' THEN l.cost_nano_usd ELSE 0 END::numeric * 0.000000001)::numeric(30, 9)
                                                                   AS own_key_usd
FROM lines l
LEFT JOIN billing_period p ON p.billing_month = l.billing_month;

-- Per user and month: the ledger (one row per event) against the aggregator's monthly totals and the
-- sum of its hourly totals. Every *_diff column is zero when all is well. hour_start is timestamptz,
-- so an hour's month is taken in UTC, as the ledger's billing_month is.
CREATE VIEW reconciliation AS
WITH ledger AS (
    SELECT user_id, billing_month, count(*)::numeric AS events,
           sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_nano_usd) AS cost_nano_usd
    FROM usage_ledger GROUP BY user_id, billing_month
), monthly AS (
    SELECT user_id, billing_month, sum(event_count) AS events,
           sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_nano_usd) AS cost_nano_usd
    FROM usage_total_monthly GROUP BY user_id, billing_month
), hourly AS (
    SELECT user_id, date_trunc('month', hour_start AT TIME ZONE 'UTC')::date AS billing_month, sum(event_count) AS events,
           sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_nano_usd) AS cost_nano_usd
    FROM usage_total_hourly GROUP BY user_id, date_trunc('month', hour_start AT TIME ZONE 'UTC')::date
)
SELECT user_id, billing_month,
       coalesce(l.events, 0)        AS ledger_events,
       coalesce(m.events, 0)        AS monthly_events,
       coalesce(h.events, 0)        AS hourly_events,
       coalesce(l.tokens, 0)        AS ledger_tokens,
       coalesce(m.tokens, 0)        AS monthly_tokens,
       coalesce(h.tokens, 0)        AS hourly_tokens,
       coalesce(l.cost_nano_usd, 0) AS ledger_cost_nano_usd,
       coalesce(m.cost_nano_usd, 0) AS monthly_cost_nano_usd,
       coalesce(h.cost_nano_usd, 0) AS hourly_cost_nano_usd,
       coalesce(m.events, 0) - coalesce(l.events, 0)               AS monthly_minus_ledger_events,
       coalesce(h.events, 0) - coalesce(l.events, 0)               AS hourly_minus_ledger_events,
       coalesce(m.tokens, 0) - coalesce(l.tokens, 0)               AS monthly_minus_ledger_tokens,
       coalesce(h.tokens, 0) - coalesce(l.tokens, 0)               AS hourly_minus_ledger_tokens,
       coalesce(m.cost_nano_usd, 0) - coalesce(l.cost_nano_usd, 0) AS monthly_minus_ledger_cost_nano_usd,
       coalesce(h.cost_nano_usd, 0) - coalesce(l.cost_nano_usd, 0) AS hourly_minus_ledger_cost_nano_usd
FROM ledger l
FULL JOIN monthly m USING (user_id, billing_month)
FULL JOIN hourly h USING (user_id, billing_month);
