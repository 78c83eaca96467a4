-- Notify, issue 5: managers' working hours, the rule-set version of each alert,
-- per-channel delivery, acknowledgement, escalation and P2 digests.

-- Working hours bound the P2 acknowledgement SLA ("4 working hours in the manager's
-- timezone"); ISO weekdays, 1 = Monday.
ALTER TABLE terrain.managers
    ADD COLUMN working_hours text NOT NULL DEFAULT '08:00-18:00'
        CHECK (working_hours ~ '^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$'),
    ADD COLUMN working_days smallint[] NOT NULL DEFAULT '{1,2,3,4,5}';

ALTER TABLE terrain.alerts
    -- Which rule set decided the alert: a rule change is data, so it must be traceable.
    ADD COLUMN ruleset_version text NOT NULL DEFAULT 'default-1',
    ADD COLUMN level smallint NOT NULL DEFAULT 1,
    ADD COLUMN escalated_from uuid REFERENCES terrain.alerts (alert_id),
    -- Channels that already took the alert: a retry only goes to the others, so an SMTP
    -- outage never makes the webhook fire twice.
    ADD COLUMN channels_done text[] NOT NULL DEFAULT '{}',
    -- Set when a P2 alert used one of its manager's throttle slots (kept across retries).
    ADD COLUMN throttle_counted_at timestamptz,
    -- The digest alert a held P2 alert went out in.
    ADD COLUMN digest_id uuid REFERENCES terrain.alerts (alert_id),
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by uuid REFERENCES terrain.managers (manager_id),
    ADD COLUMN acknowledgement_note text,
    ADD COLUMN resolved_at timestamptz,
    ADD COLUMN resolution_note text,
    ADD COLUMN escalated_at timestamptz,
    ADD COLUMN escalation_detail text;

ALTER TABLE terrain.alerts
    ADD CONSTRAINT alerts_status_known
        CHECK (status IN ('pending', 'delivered', 'failed', 'held', 'digested'));

-- The escalation loop scans alerts nobody acknowledged and nobody escalated yet.
CREATE INDEX alerts_awaiting_acknowledgement ON terrain.alerts (created_at)
    WHERE acknowledged_at IS NULL AND escalated_at IS NULL;
CREATE INDEX alerts_submission ON terrain.alerts (submission_id, rule_id);
CREATE INDEX alerts_held ON terrain.alerts (manager_id) WHERE status = 'held';
CREATE INDEX alerts_throttle ON terrain.alerts (manager_id, throttle_counted_at)
    WHERE throttle_counted_at IS NOT NULL;
