-- User-months the billing sink's PeriodCloser could not book (issue 14; ADR 0055). One that cannot be
-- booked (its ledger sums overflow bigint, say: usage back-dated into a closed month) no longer stops the
-- closing of every other: it is left out, reported here, in the metric sink_period_close_failures and in
-- the log, and tried again on every run (failures counts the runs) until someone corrects its usage.
CREATE TABLE period_close_failure (
    billing_month   date        NOT NULL,
    user_id         text        NOT NULL,
    reason          text        NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    failures        bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (billing_month, user_id)
);

-- Least privilege (V12, ADR 0060, when present): the sink records failures, finance reads them. The roles
-- are cluster-wide and created by V12, which runs before this; without them there is nothing to grant.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tokenmeter_sink') THEN
        GRANT SELECT, INSERT, UPDATE ON period_close_failure TO tokenmeter_sink;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'tokenmeter_finance') THEN
        GRANT SELECT ON period_close_failure TO tokenmeter_finance;
    END IF;
END $$;
