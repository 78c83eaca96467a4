-- `terrain failed replay` re-publishes a failed submission's original payload to its source
-- topic once its cause is fixed. The row keeps when it was last replayed and how often, so
-- `terrain failed list` tells what is still waiting from what was already sent again (a
-- replay that fails again is a new failed row, at its new offset).
ALTER TABLE terrain.failed_submissions
    ADD COLUMN replayed_at timestamptz,
    ADD COLUMN replay_count integer NOT NULL DEFAULT 0;
