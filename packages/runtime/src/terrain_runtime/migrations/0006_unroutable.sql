-- Urgent complaints that no manager could receive. Routing walks a market's ladder (its
-- levels, then the regional directors); when nobody on it can receive an alert, or every
-- channel of every recipient failed for good, the alert is kept here with its reason instead
-- of vanishing. One row per (submission, rule): a redelivered batch or a second failing
-- recipient records it once, so the row count is the count of silent complaints.
-- A table of its own rather than alerts rows without a manager: every alert keeps its
-- manager (the sender, the page and escalation all join on it) and its unique key.
CREATE TABLE terrain.unroutable_alerts (
    submission_id    uuid NOT NULL,
    rule_id          text NOT NULL,
    market           char(2) NOT NULL,
    severity         text NOT NULL,
    signals          text[] NOT NULL DEFAULT '{}',
    reason           text NOT NULL CHECK (reason IN ('no_recipient', 'all_channels_failed')),
    -- Why, in words for the SRE (never the verbatim nor a number).
    detail           text NOT NULL,
    received_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    ruleset_version  text NOT NULL,
    -- What the alert would have said: enough to route it again once someone is appointed.
    payload          jsonb NOT NULL,
    trace_context    jsonb,
    PRIMARY KEY (submission_id, rule_id)
);
CREATE INDEX unroutable_alerts_recorded ON terrain.unroutable_alerts (market, recorded_at);
