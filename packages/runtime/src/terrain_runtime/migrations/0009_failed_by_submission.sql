-- The field app's receipt looks up failures by submission id (up to 500 ids a request), as
-- `terrain trace` does: without this index each lookup read the whole failed-submissions
-- table. Rows without an id (records too broken to name one) are never looked up by it.
CREATE INDEX failed_submissions_submission ON terrain.failed_submissions (submission_id)
    WHERE submission_id IS NOT NULL;
