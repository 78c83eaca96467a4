"""Routing against the real broker and database, counted at the receivers: an urgent
complaint climbs its market's ladder to whoever can receive it, and one that nobody can
receive is recorded, counted and shown by `terrain trace`, never dropped in silence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from prometheus_client import REGISTRY

from notify.app import create_app
from notify.outbox import AlertToRecord, Throttle
from notify.routing import route_alerts
from terrain_cli.trace import show
from terrain_contracts.topics import SUBMISSIONS_ENRICHED
from terrain_contracts.vocabulary import Severity
from terrain_testkit.factories import stored_record
from terrain_testkit.sinks import WebhookSink
from terrain_testkit.topics import produce, running
from tests.integration.notify_support import (
    Clock,
    add,
    alerts_of,
    notify_settings,
    own_directory,
    submission,
    until,
)


@pytest.fixture
async def directory(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with own_directory(database_url) as connection:
        yield connection


def unroutable_count(market: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "terrain_alerts_unroutable_total", {"market": market, "reason": reason}
    )
    return value or 0.0


async def unroutable_rows(database_url: str, submission_id: str) -> list[asyncpg.Record]:
    return await alerts_of(
        database_url,
        "SELECT reason, market, detail FROM terrain.unroutable_alerts WHERE submission_id = $1",
        UUID(submission_id),
    )


async def trace_of(
    connection: asyncpg.Connection, submission_id: str, capsys: pytest.CaptureFixture[str]
) -> str:
    capsys.readouterr()
    assert await show(connection, UUID(submission_id))
    return capsys.readouterr().out


async def test_a_market_without_level_one_alerts_its_lowest_level_and_skips_the_deactivated(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs)
        gone = await add(directory, settings, market="CM", name="Old", webhook=hooks.url("/cm-1"))
        await directory.execute(
            "UPDATE terrain.managers SET active = false WHERE manager_id = $1", gone
        )
        await add(
            directory, settings, market="CM", name="Paul", level=2, webhook=hooks.url("/cm-2")
        )
        await add(
            directory, settings, market="CM", name="Above", level=3, webhook=hooks.url("/cm-3")
        )
        await add(directory, settings, market="*", name="Dir", level=4, webhook=hooks.url("/dir"))
        # A market whose level 1 has a deactivated and an active manager.
        left = await add(directory, settings, market="CD", name="Left", webhook=hooks.url("/cd-x"))
        await directory.execute(
            "UPDATE terrain.managers SET active = false WHERE manager_id = $1", left
        )
        await add(directory, settings, market="CD", name="Kabila", webhook=hooks.url("/cd-1"))
        cameroon = stored_record(submission("CM", feedback__urgent=True))
        congo = stored_record(submission("CD", feedback__urgent=True))
        await produce(SUBMISSIONS_ENRICHED.name(namespace), [cameroon, congo, cameroon])
        async with running(create_app(settings)):
            await until(lambda: len(hooks.bodies("/cm-2")) >= 1 and len(hooks.bodies("/cd-1")) >= 1)
            await asyncio.sleep(1.0)  # room for a duplicate or a stray copy to show up
    (body,) = hooks.bodies("/cm-2")
    assert body["submission_id"] == cameroon[0].decode()
    # It says why it came to level 2.
    assert (body["routed_to"], body["routed_level"]) == ("market", 2)
    (congo_body,) = hooks.bodies("/cd-1")
    assert "routed_to" not in congo_body
    for path in ("/cm-1", "/cm-3", "/dir", "/cd-x"):
        assert hooks.bodies(path) == []


async def test_a_market_with_nobody_but_a_regional_director_alerts_the_director(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs)
        # No webhook, email nor SMS: cannot receive, so not on the ladder.
        await add(directory, settings, market="MG", name="Unreachable")
        await add(directory, settings, market="*", name="Awa", level=2, webhook=hooks.url("/dir"))
        await add(directory, settings, market="*", name="Top", level=3, webhook=hooks.url("/top"))
        urgent = submission("MG", feedback__urgent=True)
        await produce(SUBMISSIONS_ENRICHED.name(namespace), [stored_record(urgent)])
        async with running(create_app(settings)):
            await until(lambda: len(hooks.bodies("/dir")) >= 1)
            await asyncio.sleep(1.0)
    (body,) = hooks.bodies("/dir")
    assert body["submission_id"] == urgent["submission_id"] and body["market"] == "MG"
    assert (body["routed_to"], body["routed_level"]) == ("regional", 2)
    assert hooks.bodies("/top") == []
    assert await unroutable_rows(database_url, urgent["submission_id"]) == []


async def test_a_market_with_nobody_records_the_alert_unroutable_once_and_trace_shows_it(
    settings_kwargs: dict[str, Any],
    namespace: str,
    database_url: str,
    directory: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = unroutable_count("BF", "no_recipient")
    topic = SUBMISSIONS_ENRICHED.name(namespace)
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs)
        await add(directory, settings, market="CF", name="Sentinel", webhook=hooks.url("/cf"))
        urgent = submission("BF", feedback__urgent=True, feedback__verbatim="argent perdu")
        record = stored_record(urgent)
        await produce(topic, [record, record])  # redelivered inside one batch
        async with running(create_app(settings)):
            await until_rows(database_url, urgent["submission_id"])
            # Redelivered in a later batch; the sentinel behind it shows it was consumed.
            sentinel = stored_record(submission("CF", feedback__urgent=True))
            await produce(topic, [record, sentinel])
            await until(lambda: len(hooks.bodies("/cf")) >= 1)
    (row,) = await unroutable_rows(database_url, urgent["submission_id"])
    assert row["reason"] == "no_recipient" and row["market"] == "BF"
    assert unroutable_count("BF", "no_recipient") == before + 1
    assert hooks.bodies("/cf")[0]["submission_id"] == sentinel[0].decode()
    output = await trace_of(directory, urgent["submission_id"], capsys)
    assert "UNROUTABLE" in output and "no_recipient" in output and "BF" in output
    assert urgent["feedback"]["verbatim"] not in output  # never the verbatim


@pytest.mark.parametrize(("status", "attempts"), [(404, 1), (503, 3)])
async def test_a_webhook_refusing_until_the_sender_gives_up_makes_the_alert_unroutable(
    settings_kwargs: dict[str, Any],
    namespace: str,
    database_url: str,
    directory: Any,
    capsys: pytest.CaptureFixture[str],
    status: int,
    attempts: int,
) -> None:
    before = unroutable_count("GW", "all_channels_failed")
    with WebhookSink(status=status) as hooks:
        settings = notify_settings(settings_kwargs, max_attempts=attempts)
        await add(directory, settings, market="GW", name="Domingos", webhook=hooks.url("/gw"))
        urgent = submission("GW", feedback__urgent=True)
        await produce(SUBMISSIONS_ENRICHED.name(namespace), [stored_record(urgent)])
        async with running(create_app(settings)):
            await until_rows(database_url, urgent["submission_id"])
            await asyncio.sleep(0.5)
    # The receiver saw every attempt, and no more once the sender gave up.
    assert len(hooks.bodies("/gw")) == attempts
    (row,) = await unroutable_rows(database_url, urgent["submission_id"])
    assert row["reason"] == "all_channels_failed" and row["market"] == "GW"
    assert unroutable_count("GW", "all_channels_failed") == before + 1
    output = await trace_of(directory, urgent["submission_id"], capsys)
    assert "UNROUTABLE" in output and "all_channels_failed" in output
    assert f"HTTP {status}" in output  # each failed attempt, under its alert


async def test_an_alert_due_for_a_manager_deactivated_meanwhile_is_not_sent_to_them(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    before = unroutable_count("CF", "all_channels_failed")
    with WebhookSink(status=503) as hooks:
        settings = notify_settings(settings_kwargs, retry_base_s=1.0, max_attempts=5)
        manager = await add(directory, settings, market="CF", name="Left", webhook=hooks.url("/cf"))
        urgent = submission("CF", feedback__urgent=True)
        await produce(SUBMISSIONS_ENRICHED.name(namespace), [stored_record(urgent)])
        async with running(create_app(settings)):
            await until(lambda: len(hooks.bodies("/cf")) == 1)
            # The first attempt failed for a moment; before the retry the manager leaves.
            await directory.execute(
                "UPDATE terrain.managers SET active = false WHERE manager_id = $1", manager
            )
            await until_rows(database_url, urgent["submission_id"])
    assert len(hooks.bodies("/cf")) == 1  # the retry never went out
    (row,) = await unroutable_rows(database_url, urgent["submission_id"])
    assert row["reason"] == "all_channels_failed" and row["market"] == "CF"
    assert unroutable_count("CF", "all_channels_failed") == before + 1
    assert await until_statuses(database_url, urgent["submission_id"], 1) == ["failed"]


async def test_one_recipient_failing_while_another_received_it_is_not_unroutable(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    with WebhookSink() as good, WebhookSink(status=410) as bad:
        settings = notify_settings(settings_kwargs)
        await add(directory, settings, market="SL", name="Fatmata", webhook=good.url("/sl"))
        await add(directory, settings, market="SL", name="Gone", webhook=bad.url("/sl"))
        urgent = submission("SL", feedback__urgent=True)
        await produce(SUBMISSIONS_ENRICHED.name(namespace), [stored_record(urgent)])
        async with running(create_app(settings)):
            await until(lambda: len(good.bodies("/sl")) == 1 and len(bad.bodies("/sl")) == 1)
            statuses = await until_statuses(database_url, urgent["submission_id"], 2)
    assert sorted(statuses) == ["delivered", "failed"]
    assert await unroutable_rows(database_url, urgent["submission_id"]) == []


async def test_an_alert_routed_to_level_two_escalates_above_it_never_back_to_level_one(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    clock = Clock()
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs)
        await add(directory, settings, market="EG", name="Omar", level=2, webhook=hooks.url("/2"))
        await add(directory, settings, market="EG", name="Hoda", level=3, webhook=hooks.url("/3"))
        urgent = submission("EG", feedback__urgent=True)
        await produce(SUBMISSIONS_ENRICHED.name(namespace), [stored_record(urgent)])
        async with running(create_app(settings, now=clock)):
            await until(lambda: len(hooks.bodies("/2")) == 1)
            # Level 1 is appointed after the alert went to level 2.
            await add(directory, settings, market="EG", name="New", webhook=hooks.url("/1"))
            clock.offset = timedelta(minutes=16)
            await until(lambda: len(hooks.bodies("/3")) == 1)
            clock.offset = timedelta(minutes=32)  # level 3 is overdue too: nobody above
            rows = await until_escalated(database_url, urgent["submission_id"], level=3)
            await asyncio.sleep(0.5)
    assert hooks.bodies("/1") == []
    assert hooks.bodies("/3")[0]["escalated_level"] == 3
    assert hooks.bodies("/3")[0]["routed_level"] == 2  # it keeps where it was routed first
    details = {r["level"]: r["escalation_detail"] for r in rows}
    assert "level 3" in details[2]
    assert details[3] == "not acknowledged; no higher level"


async def test_a_batch_is_routed_at_once_and_a_redelivery_after_the_directory_changed_adds_nothing(
    settings_kwargs: dict[str, Any], database_url: str, directory: Any
) -> None:
    settings = notify_settings(settings_kwargs)
    first = await add(directory, settings, market="TN", name="Sami", email="sami@example.tn")
    await add(directory, settings, market="MA", name="Youssef", level=2, email="y@example.ma")
    now = datetime.now(UTC)
    batch = [_alert(market, now) for market in ("TN", "MA", "ML") for _ in range(100)]
    routed = await route_alerts(connection=directory, alerts=batch)
    assert routed.created == 200
    assert sorted({(u.market, u.reason) for u in routed.unroutable}) == [("ML", "no_recipient")]
    assert len(routed.unroutable) == 100
    # Tunisia's manager leaves and another is appointed; Morocco's leaves with nobody after.
    await directory.execute("UPDATE terrain.managers SET active = false")
    await add(directory, settings, market="TN", name="Other", email="other@example.tn")
    again = await route_alerts(connection=directory, alerts=batch)
    assert again.created == 0 and again.unroutable == []
    managers = await alerts_of(
        database_url,
        "SELECT DISTINCT manager_id FROM terrain.alerts WHERE submission_id = ANY($1::uuid[])",
        [a.submission_id for a in batch if a.market == "TN"],
    )
    assert [r["manager_id"] for r in managers] == [first]
    unroutable = await alerts_of(
        database_url,
        "SELECT count(*) AS n FROM terrain.unroutable_alerts WHERE submission_id = ANY($1::uuid[])",
        [a.submission_id for a in batch],
    )
    assert unroutable[0]["n"] == 100


async def test_p2_alerts_take_their_managers_throttle_slots_when_routed_even_side_by_side(
    settings_kwargs: dict[str, Any], database_url: str, directory: Any
) -> None:
    settings = notify_settings(settings_kwargs)
    manager = await add(directory, settings, market="GN", name="Aissatou", email="a@example.gn")
    now = datetime.now(UTC)
    throttle = Throttle(limit=3, window_s=3600)
    batches = [[_alert("GN", now, Severity.P2) for _ in range(4)] for _ in range(3)]
    urgent = [_alert("GN", now) for _ in range(2)]
    pool = await asyncpg.create_pool(database_url, min_size=3, max_size=3)
    assert pool is not None
    try:

        async def route(alerts: list[AlertToRecord]) -> int:
            async with pool.acquire() as connection:
                routed = await route_alerts(connection=connection, alerts=alerts, throttle=throttle)
            return routed.created

        # Three consumers at once: the count-then-take is atomic across them.
        created = await asyncio.gather(*(route(b) for b in [*batches, urgent]))
    finally:
        await pool.close()
    assert created == [4, 4, 4, 2]
    rows = await alerts_of(
        database_url,
        """SELECT severity, status, throttle_counted_at IS NOT NULL AS counted
           FROM terrain.alerts WHERE manager_id = $1""",
        manager,
    )
    states = sorted((r["severity"], r["status"], r["counted"]) for r in rows)
    assert states == sorted(
        [("P1", "pending", False)] * 2 + [("P2", "pending", True)] * 3 + [("P2", "held", False)] * 9
    )


def _alert(market: str, received_at: datetime, severity: Severity = Severity.P1) -> AlertToRecord:
    return AlertToRecord(
        submission_id=uuid4(),
        rule_id="p1-agent-urgent" if severity == Severity.P1 else "p2-unhappy-core-topic",
        severity=severity,
        signals=[],
        market=market,
        received_at=received_at,
        payload={"market": market},
        ruleset_version="test",
    )


async def until_rows(database_url: str, submission_id: str, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await unroutable_rows(database_url, submission_id):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("no unroutable row in time")
        await asyncio.sleep(0.1)


async def until_statuses(
    database_url: str, submission_id: str, settled: int, timeout_s: float = 20.0
) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        rows = await alerts_of(
            database_url,
            "SELECT status FROM terrain.alerts WHERE submission_id = $1 AND status <> 'pending'",
            UUID(submission_id),
        )
        if len(rows) >= settled:
            return [r["status"] for r in rows]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("alerts not settled in time")
        await asyncio.sleep(0.1)


async def until_escalated(
    database_url: str, submission_id: str, *, level: int, timeout_s: float = 20.0
) -> list[asyncpg.Record]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        rows = await alerts_of(
            database_url,
            """SELECT level, escalation_detail FROM terrain.alerts
               WHERE submission_id = $1 ORDER BY level""",
            UUID(submission_id),
        )
        if any(r["level"] == level and r["escalation_detail"] for r in rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not escalated in time")
        await asyncio.sleep(0.1)
