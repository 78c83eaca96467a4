-- Enrich's analytics contract: CRM segments (by pseudonym, valid from a date), the
-- enrichment as columns of terrain.submissions, the stable view analytics.submissions,
-- its indexes, and the read-only "analyst" role.

-- Segments imported from CRM extracts (`terrain segments import`). Keyed by the same
-- keyed pseudonym as the submissions: the number itself is never stored. A customer's
-- history is kept, so a visit is always read against the segment valid when it was
-- collected, whatever was imported since.
CREATE TABLE terrain.customer_segments (
    msisdn_hash    text NOT NULL,
    valid_from     timestamptz NOT NULL,
    segment        text NOT NULL,
    value_tier     text,
    plan           text,
    tenure_months  integer CHECK (tenure_months >= 0),
    imported_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (msisdn_hash, valid_from)
);

-- The enrichment also lives in enrichment (jsonb); columns make the analysts' filters
-- indexable and the view cheap. Nullable: rows stored before this migration have none.
ALTER TABLE terrain.submissions
    ADD COLUMN country_code   char(2),
    ADD COLUMN region         text,
    ADD COLUMN city           text,
    ADD COLUMN h3_cell        text,
    ADD COLUMN outside_market boolean,
    ADD COLUMN segment        text,
    ADD COLUMN value_tier     text,
    ADD COLUMN signals        text[] NOT NULL DEFAULT '{}';

-- Earlier rows: fill from their enrichment document, so the view has no silent gap.
UPDATE terrain.submissions SET
    country_code   = enrichment->'geo'->>'country_code',
    region         = enrichment->'geo'->>'region',
    city           = enrichment->'geo'->>'city',
    h3_cell        = enrichment->'geo'->>'h3_cell',
    outside_market = coalesce(enrichment->'geo'->'flags' ? 'outside_market', false),
    segment        = enrichment->'segment'->>'segment',
    value_tier     = enrichment->'segment'->>'value_tier',
    signals        = coalesce(ARRAY(SELECT jsonb_array_elements_text(enrichment->'signals')), '{}');

-- The obvious queries: a market over days (submissions_market_collected exists already),
-- a city, a topic, a signal, a hotspot cell.
CREATE INDEX submissions_market_day ON terrain.submissions (agent_market, ((collected_at AT TIME ZONE 'UTC')::date));
CREATE INDEX submissions_city ON terrain.submissions (country_code, city);
CREATE INDEX submissions_topics ON terrain.submissions USING gin (topics);
CREATE INDEX submissions_signals ON terrain.submissions USING gin (signals);
CREATE INDEX submissions_h3 ON terrain.submissions (h3_cell) WHERE h3_cell IS NOT NULL;
CREATE INDEX submissions_segment ON terrain.submissions (agent_market, segment);

-- The analytics contract (docs/ANALYTICS.md): one row per stored submission. Columns are
-- only ever added, never renamed or removed; a breaking change is a new view.
CREATE VIEW analytics.submissions AS
SELECT
    s.submission_id,
    s.campaign_id,
    s.collected_at,
    s.received_at,
    s.stored_at,
    s.agent_employee_id,
    s.agent_function,
    s.agent_market,
    s.country_code,
    s.region,
    s.city,
    s.lat,
    s.lon,
    s.h3_cell,
    coalesce(s.outside_market, false) AS outside_market,
    s.customer_kind,
    s.segment,
    s.value_tier,
    s.msisdn_hash,
    s.topics,
    s.satisfaction,
    s.nps,
    s.urgent,
    s.verbatim,
    s.language,
    s.signals,
    s.app_version,
    (s.collected_at AT TIME ZONE 'UTC')::date AS collected_day,
    s.enrichment->'geo'->>'timezone' AS timezone,
    (s.enrichment->'geo'->>'city_distance_km')::double precision AS city_distance_km,
    s.enrichment->'segment'->>'plan' AS plan,
    (s.enrichment->'segment'->>'tenure_months')::integer AS tenure_months,
    s.enrichment->'segment'->>'source' AS segment_source,
    s.enrichment->'geo'->'flags' AS geo_flags,
    s.enrichment->>'enricher_version' AS enricher_version
FROM terrain.submissions s;

-- The analysts' role: read the analytics schema, nothing else. Roles are cluster-wide
-- while this migration runs once per database (tests create many), so it must accept a
-- role made by another database's migration, even one running at the same moment.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'analyst') THEN
        CREATE ROLE analyst NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by another database's migration
END
$$;
-- Views run with their owner's rights: analyst needs no right on schema terrain, so the
-- sealed numbers (terrain.customer_contacts, terrain.managers) stay out of reach.
REVOKE ALL ON SCHEMA terrain FROM PUBLIC;
GRANT USAGE ON SCHEMA analytics TO analyst;
GRANT SELECT ON analytics.submissions TO analyst;
