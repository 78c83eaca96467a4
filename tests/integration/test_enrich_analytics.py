"""Enrich's analytics contract against the real broker and database: the enriched row in
analytics.submissions (geo, CRM segment as of collection, signals), the analyst role that
reads it and nothing sealed, the indexes of the obvious queries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from enrich.app import create_app
from enrich.repository import import_segments
from enrich.segments import SegmentRecord
from enrich.settings import EnrichSettings
from terrain_contracts.messages import decode_stored_submission
from terrain_contracts.topics import SUBMISSIONS_ENRICHED, SUBMISSIONS_RAW
from terrain_testkit.database import fetchval, throwaway_database
from terrain_testkit.factories import field_submission, raw_envelope
from terrain_testkit.topics import produce, read_topic, running


async def test_enriched_rows_in_the_analytics_view(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    with_crm = field_submission()  # the Dakar example: money not received
    envelope = raw_envelope(with_crm)
    msisdn_hash = envelope.submission.customer.msisdn_hash
    assert msisdn_hash
    enterprise = field_submission(
        location={"place": "Marché central, Thiès"},
        customer={"kind": "enterprise", "consent": False, "company": "Banque Atlantique SA"},
        feedback={"topics": ["network_coverage"], "satisfaction": 2,
                  "verbatim": "Pas de réseau depuis lundi au bureau."},
    )  # fmt: skip
    connection = await asyncpg.connect(database_url)
    try:
        # The customer was "youth" until March, "family" since: the visit (April) is family.
        await import_segments(
            connection=connection,
            records=[
                SegmentRecord(msisdn_hash, datetime(2024, 1, 1, tzinfo=UTC), "youth", "silver"),
                SegmentRecord(msisdn_hash, datetime(2025, 3, 1, tzinfo=UTC), "family", "gold",
                              "famille_plus", 26),
                SegmentRecord(msisdn_hash, datetime(2025, 6, 1, tzinfo=UTC), "premium", "platinum"),
            ],
        )  # fmt: skip
    finally:
        await connection.close()
    records = [
        (str(envelope.submission_id).encode(), envelope.model_dump_json().encode()),
        (enterprise["submission_id"].encode(), raw_envelope(enterprise).model_dump_json().encode()),
    ]
    await produce(SUBMISSIONS_RAW.name(namespace), records)
    async with running(create_app(EnrichSettings(**settings_kwargs))):
        enriched = await read_topic(SUBMISSIONS_ENRICHED.name(namespace), expect=2)
    assert len(enriched) == 2
    message = next(
        m
        for m in map(decode_stored_submission, (r.value for r in enriched))
        if m.submission_id == envelope.submission_id
    )
    assert message.enrichment.segment.segment == "family"
    assert message.enrichment.signals == ["money_lost"]

    connection = await asyncpg.connect(database_url)
    try:
        rows = {
            str(r["submission_id"]): r
            for r in await connection.fetch(
                "SELECT * FROM analytics.submissions WHERE submission_id = ANY($1::uuid[])",
                [envelope.submission_id, enterprise["submission_id"]],
            )
        }
    finally:
        await connection.close()
    row = rows[str(envelope.submission_id)]
    assert (row["agent_market"], row["country_code"], row["city"], row["region"]) == (
        "SN", "SN", "Dakar", "Dakar",
    )  # fmt: skip
    assert row["h3_cell"] and row["outside_market"] is False
    assert (row["segment"], row["value_tier"], row["plan"], row["tenure_months"]) == (
        "family", "gold", "famille_plus", 26,
    )  # fmt: skip
    assert (row["language"], row["signals"], row["topics"]) == (
        "fr",
        ["money_lost"],
        ["orange_money"],
    )
    assert row["msisdn_hash"] == msisdn_hash and row["timezone"] == "Africa/Dakar"
    other = rows[enterprise["submission_id"]]
    assert (other["city"], other["h3_cell"], other["lat"]) == ("Thiès", None, None)
    assert (other["segment"], other["segment_source"]) == ("enterprise_large", "company_name")
    assert other["signals"] == ["network_outage"]
    assert json.loads(other["geo_flags"]) == ["no_gps"]
    expected = {
        "submission_id", "campaign_id", "collected_at", "received_at", "stored_at",
        "agent_employee_id", "agent_function", "agent_market", "country_code", "region", "city",
        "lat", "lon", "h3_cell", "outside_market", "customer_kind", "segment", "value_tier",
        "msisdn_hash", "topics", "satisfaction", "nps", "verbatim", "language", "signals",
        "app_version",
    }  # fmt: skip
    assert expected <= set(row.keys())


async def _as_analyst(connection: asyncpg.Connection, sql: str) -> None:
    async with connection.transaction():
        await connection.execute("SET LOCAL ROLE analyst")
        await connection.execute(sql)


async def test_analyst_reads_the_view_and_nothing_sealed(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("GRANT analyst TO CURRENT_USER")
        await _as_analyst(connection, "SELECT count(*) FROM analytics.submissions")
        for table in ("terrain.customer_contacts", "terrain.managers", "terrain.submissions"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await _as_analyst(connection, f"SELECT count(*) FROM {table}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as_analyst(connection, "DELETE FROM analytics.submissions")
    finally:
        await connection.close()


async def test_migration_accepts_an_existing_analyst_role() -> None:
    # The role exists cluster-wide already (this session's database made it): migrating
    # another database must take it as it is and grant it the view.
    async with throwaway_database("terrain_test") as url:
        granted = await fetchval(
            url, "SELECT has_table_privilege('analyst', 'analytics.submissions', 'SELECT')"
        )
    assert granted is True


@pytest.mark.parametrize(
    "where",
    [
        "agent_market = 'SN' AND collected_at >= '2025-04-15' AND collected_at < '2025-04-16'",
        "agent_market = 'SN' AND collected_day = '2025-04-15'",
        "country_code = 'SN' AND city = 'Dakar'",
        "topics @> ARRAY['billing']",
        "signals @> ARRAY['fraud']",
        "h3_cell = '8854ac2e85fffff'",
    ],
)
async def test_the_obvious_queries_have_an_index(database_url: str, where: str) -> None:
    """With sequential scans discouraged, a query without a usable index still scans."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                r[0]
                for r in await connection.fetch(
                    f"EXPLAIN SELECT * FROM analytics.submissions WHERE {where}"
                )
            )
    finally:
        await connection.close()
    assert "Seq Scan" not in plan, plan
