-- Alerts that arrive (issue 17, ADR 0073): the webhooks an admin registers per tenant, and what the alert-notifier
-- did with each usage alert for each of them. Written by the notifier only (its admin API and its delivery loop),
-- as the NOLOGIN group role tokenmeter_notifier (ADR 0060's pattern).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tokenmeter_notifier') THEN
        CREATE ROLE tokenmeter_notifier NOLOGIN;
    END IF;
END $$;

-- A tenant's endpoint. 'secret' signs every delivery (HMAC-SHA256); it is returned once, when the webhook is
-- created or its secret replaced, and never logged. A webhook is disabled, never deleted: the delivery log refers
-- to it.
CREATE TABLE webhook (
    webhook_id  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text        NOT NULL CHECK (length(tenant_id) BETWEEN 1 AND 256),
    url         text        NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    secret      text        NOT NULL CHECK (length(secret) BETWEEN 16 AND 256),
    format      text        NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    enabled     boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_tenant_enabled_idx ON webhook (tenant_id) WHERE enabled;

-- One row per (alert, webhook): its unique key is what makes a delivery happen once across restarts. Inserted
-- 'pending' at the first attempt (so the retry window survives a restart), then 'delivered' (the endpoint answered
-- 2xx) or 'dead_letter' (the retry window ran out, or the webhook was disabled meanwhile); never changed after.
CREATE TABLE webhook_delivery (
    alert_id          text        NOT NULL,
    webhook_id        uuid        NOT NULL REFERENCES webhook (webhook_id),
    status            text        NOT NULL CHECK (status IN ('pending', 'delivered', 'dead_letter')),
    attempts          integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_http_status  integer,
    last_error        text        CHECK (length(last_error) <= 512),
    first_attempt_at  timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    PRIMARY KEY (alert_id, webhook_id),
    CHECK ((status = 'pending') = (finished_at IS NULL))
);
CREATE INDEX webhook_delivery_webhook_idx ON webhook_delivery (webhook_id, first_attempt_at);

-- What could not be delivered, with the reason and the body that was (or would have been) sent, for an operator to
-- replay: a delivery whose retries ran out (webhook_id set), or a record of usage-alerts that is no UsageAlert
-- (webhook_id and alert_id null, the record's position instead). Written in the same transaction as the
-- delivery's final status.
CREATE TABLE webhook_dead_letter (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id      text,
    webhook_id    uuid        REFERENCES webhook (webhook_id),
    reason        text        NOT NULL CHECK (length(reason) <= 512),
    body          text,
    topic         text        NOT NULL,
    kafka_partition integer   NOT NULL,
    kafka_offset  bigint      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((alert_id IS NULL) = (webhook_id IS NULL))
);
-- Once per delivery, once per bad record, however often the notifier is restarted.
CREATE UNIQUE INDEX webhook_dead_letter_delivery_key ON webhook_dead_letter (alert_id, webhook_id) WHERE webhook_id IS NOT NULL;
CREATE UNIQUE INDEX webhook_dead_letter_record_key ON webhook_dead_letter (topic, kafka_partition, kafka_offset) WHERE webhook_id IS NULL;

GRANT SELECT ON flyway_schema_history TO tokenmeter_notifier;
GRANT SELECT, INSERT, UPDATE ON webhook, webhook_delivery TO tokenmeter_notifier;
GRANT SELECT, INSERT ON webhook_dead_letter TO tokenmeter_notifier;
-- Finance and operators read what was delivered; never the webhooks' secrets.
GRANT SELECT ON webhook_delivery, webhook_dead_letter TO tokenmeter_finance;
GRANT SELECT (webhook_id, tenant_id, url, format, enabled, created_at, updated_at) ON webhook TO tokenmeter_finance;
