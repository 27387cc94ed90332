-- The Batch API at the edge (issue 16, ADR 0087). (Version 35.1: a second step of the same change, numbered under
-- the session's assigned V35.) Files and batches live upstream under the key that created them; when that is the
-- service's own key, every user's files and batches share it, so the edge records whose each one is and answers a
-- file or batch only to its owner (404 to anyone else, as the upstream would for another key). A batch row also
-- holds its reservation (ADR 0087: reserved at creation, settled once when the edge sees the batch end) and when it
-- was billed, so a batch is settled once however often it is read; its events have name-based ids anyway.
CREATE TABLE batch_file (
    file_id     text        PRIMARY KEY CHECK (length(file_id) BETWEEN 1 AND 128),
    user_id     text        NOT NULL REFERENCES account (user_id),
    api_key_id  text        NOT NULL,
    purpose     text        NOT NULL CHECK (length(purpose) BETWEEN 1 AND 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE batch_job (
    batch_id            text        PRIMARY KEY CHECK (length(batch_id) BETWEEN 1 AND 128),
    user_id             text        NOT NULL REFERENCES account (user_id),
    api_key_id          text        NOT NULL,
    -- The caller's tenant and key project at creation: its line events carry them, whoever reads the batch's end.
    tenant_id           text        NOT NULL,
    project             text,
    input_file_id       text        NOT NULL,
    endpoint            text        NOT NULL,
    -- The quota reservation holding the estimate (ADR 0087: named after the batch), and the estimate.
    reservation_id      text        NOT NULL,
    estimate_nano_usd   bigint      NOT NULL CHECK (estimate_nano_usd >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- Set once, when the edge saw the batch end and settled its reservation: the end status and the billed sum.
    ended_status        text        CHECK (ended_status IN ('completed', 'failed', 'cancelled', 'expired')),
    billed_nano_usd     bigint      CHECK (billed_nano_usd >= 0),
    billed_at           timestamptz,
    CHECK ((ended_status IS NULL) = (billed_at IS NULL) AND (billed_at IS NULL) = (billed_nano_usd IS NULL))
);
-- The open batches (the poller's work list).
CREATE INDEX batch_job_open_idx ON batch_job (created_at) WHERE billed_at IS NULL;
CREATE INDEX batch_job_user_idx ON batch_job (user_id, created_at);

GRANT SELECT, INSERT ON batch_file TO tokenmeter_edge;
GRANT SELECT, INSERT ON batch_job TO tokenmeter_edge;
GRANT UPDATE (ended_status, billed_nano_usd, billed_at) ON batch_job TO tokenmeter_edge;
