-- Every enumerated text column accepts only the words of terrain_contracts.vocabulary
-- (tests/contract/test_vocabulary_checks.py compares each constraint with its enum): a
-- writer's typo is refused at the write instead of becoming a row no reader understands.
-- Terrain's writers have only ever written these values, so existing rows satisfy them.
-- A new word in the vocabulary is a new migration that replaces the constraint.
-- (An alert's signals are what fired, agent_marked_urgent included, not only the
-- verbatim's signals: they are not checked against Signal.)
ALTER TABLE terrain.alerts
    ADD CONSTRAINT alerts_severity_known CHECK (severity IN ('P1', 'P2'));

ALTER TABLE terrain.unroutable_alerts
    ADD CONSTRAINT unroutable_alerts_severity_known CHECK (severity IN ('P1', 'P2'));

ALTER TABLE terrain.submissions
    ADD CONSTRAINT submissions_signals_known CHECK (signals <@ ARRAY[
        'money_lost', 'fraud', 'network_outage', 'safety_hazard', 'churn_threat',
        'staff_conduct']::text[]);

ALTER TABLE terrain.failed_submissions
    ADD CONSTRAINT failed_submissions_reason_known CHECK (reason IN (
        'undecodable', 'unknown_schema_version', 'invalid', 'conflict', 'enrichment_error',
        'store_rejected', 'decision_error'));
