-- Where is submission X? Each stored submission, failure and alert keeps the trace it
-- belongs to, so `terrain trace X` can hand the SRE the trace id to open in the trace UI,
-- and the alert sender can continue the submission's trace when it delivers.
ALTER TABLE terrain.submissions ADD COLUMN trace_id text;
ALTER TABLE terrain.failed_submissions ADD COLUMN trace_id text;
ALTER TABLE terrain.alerts ADD COLUMN trace_context jsonb;
