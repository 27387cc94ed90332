-- Quota decisions in Postgres while Redis is unavailable (issue 21, QUOTA_FAILURE_POLICY=FAIL_TO_DATABASE,
-- ADR 0072). The edge writes these rows only while its Redis circuit breaker is open, and hands what they hold
-- over to Redis (counters and open reservations) before Redis answers again. Not read by finance: the ledger
-- stays the bill; these rows are the quota engine's state, like the Redis keys they stand in for.

-- One row per user and month that was decided here. settled_nano_usd: service-credit usage as this path counts
-- it (raised to usage_total_monthly at each decision, never lowered, plus the settles made here);
-- reserved_nano_usd: open service-credit reservations made here; unsynced_*: settled here, not yet added to
-- Redis; handover_seq: the last handover to Redis (Redis keeps it too, so a handover is applied once).
CREATE TABLE quota_db_month (
    user_id                     text    NOT NULL,
    billing_month               date    NOT NULL,
    settled_nano_usd            bigint  NOT NULL DEFAULT 0 CHECK (settled_nano_usd >= 0),
    reserved_nano_usd           bigint  NOT NULL DEFAULT 0 CHECK (reserved_nano_usd >= 0),
    unsynced_settled_nano_usd   bigint  NOT NULL DEFAULT 0 CHECK (unsynced_settled_nano_usd >= 0),
    unsynced_personal_nano_usd  bigint  NOT NULL DEFAULT 0 CHECK (unsynced_personal_nano_usd >= 0),
    handover_seq                bigint  NOT NULL DEFAULT 0,
    pending                     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, billing_month)
);
CREATE INDEX quota_db_month_pending_idx ON quota_db_month (billing_month) WHERE pending;

-- Rate limits while in Postgres: a fixed 60 s window (not Redis' GCRA), per user (api_key_id '') and per key.
CREATE TABLE quota_db_rate (
    user_id          text   NOT NULL,
    api_key_id       text   NOT NULL,
    window_start_ms  bigint NOT NULL,
    requests         bigint NOT NULL CHECK (requests >= 0),
    tokens           bigint NOT NULL CHECK (tokens >= 0),
    PRIMARY KEY (user_id, api_key_id)
);

-- Reservations decided here. state: O open, S settled, R released, E expired (estimate freed; a late settle
-- still counts), H handed over to Redis (Redis holds it from then on). route: S service credit, P personal key.
CREATE TABLE quota_db_reservation (
    reservation_id     text   PRIMARY KEY,
    user_id            text   NOT NULL,
    billing_month      date   NOT NULL,
    api_key_id         text   NOT NULL,
    route              char(1) NOT NULL CHECK (route IN ('S', 'P')),
    state              char(1) NOT NULL CHECK (state IN ('O', 'S', 'R', 'E', 'H')),
    estimate_nano_usd  bigint NOT NULL CHECK (estimate_nano_usd >= 0),
    estimate_tokens    bigint NOT NULL CHECK (estimate_tokens >= 0),
    actual_nano_usd    bigint,
    actual_tokens      bigint,
    window_start_ms    bigint NOT NULL,
    deadline_ms        bigint NOT NULL,
    closed_ms          bigint
);
CREATE INDEX quota_db_reservation_open_idx ON quota_db_reservation (user_id, billing_month) WHERE state IN ('O', 'E');
CREATE INDEX quota_db_reservation_closed_idx ON quota_db_reservation (closed_ms) WHERE state IN ('S', 'R', 'H');

-- The edge owns these rows (its quota state, not the bill): it deletes closed reservations after their retention.
GRANT SELECT, INSERT, UPDATE ON quota_db_month, quota_db_rate TO tokenmeter_edge;
GRANT SELECT, INSERT, UPDATE, DELETE ON quota_db_reservation TO tokenmeter_edge;
