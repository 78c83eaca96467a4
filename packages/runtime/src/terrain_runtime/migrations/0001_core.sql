-- Terrain's core schema: devices, submissions (exactly once), failed submissions,
-- managers and the alert outbox. Internal tables live in schema "terrain"; analysts read
-- the views of schema "analytics" only.
CREATE SCHEMA IF NOT EXISTS terrain;
CREATE SCHEMA IF NOT EXISTS analytics;

CREATE TABLE terrain.devices (
    device_id   uuid PRIMARY KEY,
    market      char(2) NOT NULL,
    label       text NOT NULL,
    -- SHA-256 of the bearer token: the token itself is shown once and never stored.
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE terrain.submissions (
    submission_id      uuid PRIMARY KEY,
    -- Hash of the canonical pseudonymised payload: a resend with the same hash is a
    -- duplicate (nothing changes), a different hash is a conflict (first one stays).
    payload_sha256     text NOT NULL,
    campaign_id        text NOT NULL,
    agent_market       char(2) NOT NULL,
    agent_employee_id  text NOT NULL,
    agent_function     text NOT NULL,
    collected_at       timestamptz NOT NULL,
    received_at        timestamptz NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT now(),
    device_id          text NOT NULL,
    customer_kind      text NOT NULL,
    msisdn_hash        text,
    topics             text[] NOT NULL,
    satisfaction       smallint NOT NULL,
    nps                smallint,
    urgent             boolean NOT NULL DEFAULT false,
    verbatim           text,
    language           text,
    lat                double precision,
    lon                double precision,
    app_version        text,
    enrichment         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The pseudonymised submission as received, unknown fields included, without the
    -- sealed number (that lives in terrain.customer_contacts).
    submission         jsonb NOT NULL,
    source_partition   integer NOT NULL,
    source_offset      bigint NOT NULL
);
CREATE INDEX submissions_market_collected ON terrain.submissions (agent_market, collected_at);
CREATE INDEX submissions_msisdn_hash ON terrain.submissions (msisdn_hash) WHERE msisdn_hash IS NOT NULL;

-- Sealed numbers of customers who consented to a call-back, apart from the submissions so
-- that no analytics grant can ever reach them.
CREATE TABLE terrain.customer_contacts (
    submission_id  uuid PRIMARY KEY REFERENCES terrain.submissions (submission_id),
    msisdn_sealed  text NOT NULL
);

CREATE TABLE terrain.failed_submissions (
    failure_id               bigserial PRIMARY KEY,
    failed_at                timestamptz NOT NULL DEFAULT now(),
    service                  text NOT NULL,
    service_version          text NOT NULL,
    reason                   text NOT NULL,
    detail                   text NOT NULL,
    source_topic             text NOT NULL,
    source_partition         integer NOT NULL,
    source_offset            bigint NOT NULL,
    submission_id            uuid,
    payload                  bytea NOT NULL,
    payload_sha256           text NOT NULL,
    existing_payload_sha256  text,
    -- A redelivered poison record is recorded once.
    UNIQUE (source_topic, source_partition, source_offset, reason)
);
CREATE INDEX failed_submissions_reason ON terrain.failed_submissions (reason, failed_at);

CREATE TABLE terrain.managers (
    manager_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- A market code, or '*' for regional directors above every market.
    market       text NOT NULL CHECK (market ~ '^([A-Z]{2}|\*)$'),
    name         text NOT NULL,
    role         text NOT NULL,
    level        smallint NOT NULL DEFAULT 1 CHECK (level >= 1),
    email        text,
    sms_sealed   text,
    webhook_url  text,
    language     text NOT NULL DEFAULT 'fr',
    timezone     text NOT NULL DEFAULT 'UTC',
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX managers_market_level ON terrain.managers (market, level) WHERE active;

-- The alert outbox: written in the same transaction that decides the alert, delivered by
-- a sender that records every attempt. The unique key is the "once" of "alerted once".
CREATE TABLE terrain.alerts (
    alert_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    submission_id   uuid NOT NULL,
    manager_id      uuid NOT NULL REFERENCES terrain.managers (manager_id),
    rule_id         text NOT NULL,
    severity        text NOT NULL,
    signals         text[] NOT NULL DEFAULT '{}',
    market          char(2) NOT NULL,
    received_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    payload         jsonb NOT NULL,
    UNIQUE (submission_id, manager_id, rule_id)
);
CREATE INDEX alerts_due ON terrain.alerts (next_attempt_at) WHERE status = 'pending';

CREATE TABLE terrain.alert_deliveries (
    delivery_id  bigserial PRIMARY KEY,
    alert_id     uuid NOT NULL REFERENCES terrain.alerts (alert_id),
    channel      text NOT NULL,
    attempt      integer NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    ok           boolean NOT NULL,
    detail       text NOT NULL
);
