-- A resend of a visit is a resend: the field app's outbox stamps a new sent_at on every
-- send (and the app block changes when the app was upgraded in between), so enrich's
-- content hash now covers what the agent recorded only, and is versioned: payload_sha256
-- holds 'v2:<hex>' for rows stored from now on. Rows stored before keep their v1 hash
-- (a bare hex digest); enrich recognises them and compares their stored document instead.
COMMENT ON COLUMN terrain.submissions.payload_sha256 IS
    'Content hash of what the agent recorded, ''v2:<hex>'' (without sent_at, app and the sealed number); a bare hex digest is the v1 hash of rows stored before';

-- How many times the field sent this visit (redeliveries inside Terrain do not count), and
-- the last sent_at seen; the stored document keeps the first one. Both are metadata-only
-- column additions: no table rewrite. last_sent_at is NULL for rows stored before (their
-- document's sent_at is the first send).
ALTER TABLE terrain.submissions
    ADD COLUMN send_count integer NOT NULL DEFAULT 1,
    ADD COLUMN last_sent_at timestamptz;

-- A conflict keeps both content hashes: the existing one (existing_payload_sha256) and now
-- the incoming record's, next to the hash of the raw bytes (payload_sha256).
ALTER TABLE terrain.failed_submissions ADD COLUMN content_sha256 text;
