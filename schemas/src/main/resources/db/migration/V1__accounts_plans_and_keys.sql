-- Accounts, plans and keys: what the edge needs to authenticate a caller and decide who pays.
-- Money columns are bigint nano-USD (1 USD = 1,000,000,000). See docs/adr/0001-money-is-nano-usd.md.

CREATE TABLE plan (
    plan_id                  text        PRIMARY KEY,
    display_name             text        NOT NULL,
    monthly_credit_nano_usd  bigint      NOT NULL CHECK (monthly_credit_nano_usd >= 0),
    requests_per_minute      integer     NOT NULL CHECK (requests_per_minute > 0),
    tokens_per_minute        bigint      NOT NULL CHECK (tokens_per_minute > 0),
    -- Percent of the credit at which the edge starts warning (soft limit); 100% is the hard limit.
    soft_limit_percent       integer     NOT NULL DEFAULT 80 CHECK (soft_limit_percent BETWEEN 1 AND 100),
    created_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE account (
    user_id                           text        PRIMARY KEY,
    tenant_id                         text        NOT NULL,
    plan_id                           text        NOT NULL REFERENCES plan (plan_id),
    status                            text        NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
    -- Per-user overrides of the plan; NULL means "use the plan's value".
    monthly_credit_override_nano_usd  bigint      CHECK (monthly_credit_override_nano_usd >= 0),
    requests_per_minute_override      integer     CHECK (requests_per_minute_override > 0),
    tokens_per_minute_override        bigint      CHECK (tokens_per_minute_override > 0),
    created_at                        timestamptz NOT NULL DEFAULT now(),
    updated_at                        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_tenant_idx ON account (tenant_id);

-- Effective limits in one place, so the edge, the sink and finance read the same numbers.
CREATE VIEW account_limits AS
SELECT a.user_id,
       a.tenant_id,
       a.plan_id,
       a.status,
       COALESCE(a.monthly_credit_override_nano_usd, p.monthly_credit_nano_usd) AS monthly_credit_nano_usd,
       COALESCE(a.requests_per_minute_override, p.requests_per_minute)         AS requests_per_minute,
       COALESCE(a.tokens_per_minute_override, p.tokens_per_minute)             AS tokens_per_minute,
       p.soft_limit_percent
FROM account a
JOIN plan p ON p.plan_id = a.plan_id;

-- Service API keys: the secret is shown once at issue time and stored only as a salted SHA-256.
CREATE TABLE api_key (
    api_key_id   text        PRIMARY KEY,
    user_id      text        NOT NULL REFERENCES account (user_id),
    key_prefix   text        NOT NULL,            -- first characters, for humans to recognise a key
    salt         bytea       NOT NULL,
    key_hash     bytea       NOT NULL,            -- sha256(salt || key)
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_key_user_idx ON api_key (user_id);
CREATE UNIQUE INDEX api_key_prefix_idx ON api_key (key_prefix);

-- A user's own provider key, AES-256-GCM encrypted under a master key from config; never returned.
CREATE TABLE personal_provider_key (
    user_id          text        NOT NULL REFERENCES account (user_id),
    provider         text        NOT NULL DEFAULT 'openai',
    key_ciphertext   bytea       NOT NULL,          -- ciphertext || GCM tag
    key_nonce        bytea       NOT NULL,          -- 12-byte GCM nonce, unique per encryption
    master_key_id    text        NOT NULL,          -- which master key encrypted it (rotation)
    key_last4        text        NOT NULL,          -- for humans; the only part ever shown
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz,
    PRIMARY KEY (user_id, provider)
);
