"""Notify end to end inside one process, against the real broker, PostgreSQL, a real SMTP
server, webhook receivers and an SMS gateway stand-in on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from notify.app import create_app
from notify.escalation import Escalator
from notify.outbox import AlertToRecord, claim_due
from notify.routing import route_alerts
from terrain_contracts.topics import DEAD_LETTERS, SUBMISSIONS_ENRICHED
from terrain_contracts.vocabulary import Severity
from terrain_testkit.factories import stored_record
from terrain_testkit.sinks import SmtpSink, WebhookSink
from terrain_testkit.topics import produce, read_topic, running
from tests.integration.notify_support import (
    BlockingHook,
    Clock,
    add,
    alerts_of,
    notify_settings,
    own_directory,
    submission,
    until,
)

ENTERPRISE = {"customer__kind": "enterprise", "customer__company": "Sonatel Pro"}


@pytest.fixture
async def directory(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with own_directory(database_url) as connection:
        yield connection


async def test_every_rule_reaches_its_market_once_on_each_channel(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    smtp = SmtpSink().start()
    try:
        with WebhookSink() as hooks, WebhookSink() as gateway:
            settings = notify_settings(
                settings_kwargs,
                smtp_host="127.0.0.1",
                smtp_port=smtp.port,
                sms_gateway_url=gateway.url("/sms"),
                sms_gateway_username="terrain",
                sms_gateway_password="gateway-secret",
            )
            await add(
                directory,
                settings,
                market="SN",
                name="Fatou",
                email="fatou@example.sn",
                sms="77 123 45 67",
                webhook=hooks.url("/sn"),
                language="fr",
            )
            await add(directory, settings, market="ML", name="Oumar", webhook=hooks.url("/ml"))
            await add(
                directory, settings, market="*", name="Dir", level=2, webhook=hooks.url("/dir")
            )
            cases = {
                "p1-agent-urgent": (submission("SN", feedback__urgent=True), None),
                "p1-signal": (submission("SN"), ["money_lost"]),
                "p2-unhappy-core-topic": (
                    submission("SN", feedback__satisfaction=1, feedback__topics=["billing"]),
                    None,
                ),
                "p2-unhappy-enterprise": (
                    submission("SN", feedback__satisfaction=2, **ENTERPRISE),
                    None,
                ),
                "p2-signal": (submission("SN"), ["network_outage"]),
            }
            calm = submission("SN", feedback__satisfaction=5)
            records = [stored_record(doc, signals) for doc, signals in cases.values()]
            records.append(stored_record(calm, ["staff_conduct"]))
            # Every record twice: a redelivery and a resend from the field add nothing.
            await produce(SUBMISSIONS_ENRICHED.name(namespace), records + records)
            async with running(create_app(settings)):
                await until(lambda: len(hooks.bodies("/sn")) >= 5 and len(smtp.messages) >= 5)
                await until(lambda: len(gateway.received) >= 2)
                await asyncio.sleep(1.0)  # room for a duplicate to show up, if there were one
    finally:
        smtp.stop()

    by_rule = {body["rule"]: body for body in hooks.bodies("/sn")}
    assert sorted(by_rule) == sorted(cases) and len(hooks.bodies("/sn")) == 5
    for rule, (doc, _) in cases.items():
        body = by_rule[rule]
        assert body["submission_id"] == doc["submission_id"]
        assert body["market"] == "SN" and body["ack_url"].startswith(settings.public_base_url)
        assert body["severity"] == rule[:2].upper()
        assert {"alert_id", "signals"} <= set(body)
    assert by_rule["p1-signal"]["signals"] == ["money_lost"]
    assert by_rule["p2-signal"]["signals"] == ["network_outage"]
    assert hooks.bodies("/ml") == [] and hooks.bodies("/dir") == []
    # Email in the manager's language, one per alert; never the customer's number.
    assert len(smtp.messages) == 5
    texts = [m.get_payload(decode=True).decode() for m in smtp.messages]  # type: ignore[union-attr]
    assert all("Satisfaction" in t and "Règle" in t for t in texts)
    assert not any("77 123" in t or "221771234567" in t for t in texts)
    # SMS only for P1, to the manager's opened number, through the authenticated gateway.
    sms = [json.loads(body) for _, _, body in gateway.received]
    assert len(sms) == 2 and {s["to"] for s in sms} == {"+221771234567"}
    assert all(h["authorization"].startswith("Basic ") for _, h, _ in gateway.received)
    versions = await alerts_of(
        database_url,
        "SELECT DISTINCT ruleset_version FROM terrain.alerts WHERE submission_id = ANY($1::uuid[])",
        [doc["submission_id"] for doc, _ in cases.values()],
    )
    assert [r["ruleset_version"] for r in versions] == ["default-1"]


async def test_smtp_down_for_a_while_then_back_delivers_once(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    smtp = SmtpSink()  # not started yet: the port refuses connections
    settings = notify_settings(settings_kwargs, smtp_host="127.0.0.1", smtp_port=smtp.port)
    await add(directory, settings, market="CI", name="Awa", email="awa@example.ci", language="en")
    urgent = submission("CI", feedback__urgent=True)
    await produce(SUBMISSIONS_ENRICHED.name(namespace), [stored_record(urgent)])
    sql = """SELECT d.ok FROM terrain.alert_deliveries d JOIN terrain.alerts a USING (alert_id)
             WHERE a.submission_id = $1 ORDER BY d.delivery_id"""
    async with running(create_app(settings)):
        for _ in range(200):
            if len(await alerts_of(database_url, sql, UUID(urgent["submission_id"]))) >= 2:
                break
            await asyncio.sleep(0.1)
        smtp.start()
        try:
            await until(lambda: len(smtp.messages) >= 1)
            await asyncio.sleep(1.0)
        finally:
            smtp.stop()
    attempts = [r["ok"] for r in await alerts_of(database_url, sql, UUID(urgent["submission_id"]))]
    assert len(smtp.messages) == 1 and "Alert CI" in smtp.messages[0]["Subject"]
    assert attempts[-1] is True and attempts.count(True) == 1 and attempts.count(False) >= 2


async def test_a_slow_webhook_in_one_market_does_not_delay_another(
    settings_kwargs: dict[str, Any], namespace: str, directory: Any
) -> None:
    with BlockingHook() as slow, WebhookSink() as fast:
        settings = notify_settings(
            settings_kwargs, sender_concurrency=6, sender_per_market=2, webhook_timeout_s=30
        )
        await add(directory, settings, market="GN", name="Mariama", webhook=slow.url())
        await add(directory, settings, market="TN", name="Sami", webhook=fast.url("/tn"))
        guinea = [stored_record(submission("GN", feedback__urgent=True)) for _ in range(8)]
        tunisia = stored_record(submission("TN", feedback__urgent=True))
        topic = SUBMISSIONS_ENRICHED.name(namespace)
        await produce(topic, guinea)
        async with running(create_app(settings)):
            await until(lambda: len(slow.received) >= 2)  # Guinea's deliveries now hang
            await produce(topic, [tunisia])
            # Tunisia's alert arrives while every Guinea delivery is still hanging.
            await until(lambda: len(fast.bodies("/tn")) == 1)
            assert not slow.release.is_set()
            slow.release.set()
            await until(lambda: len(slow.received) >= 8)
    assert fast.bodies("/tn")[0]["market"] == "TN"


async def test_a_slow_delivery_keeps_its_claim_past_the_lease(
    settings_kwargs: dict[str, Any], namespace: str, directory: Any
) -> None:
    with BlockingHook() as slow:
        settings = notify_settings(settings_kwargs, sender_lease_s=1.5, webhook_timeout_s=30)
        await add(directory, settings, market="GW", name="Domingos", webhook=slow.url())
        await produce(
            SUBMISSIONS_ENRICHED.name(namespace),
            [stored_record(submission("GW", feedback__urgent=True))],
        )
        async with running(create_app(settings)):
            await until(lambda: len(slow.received) == 1)
            # Three leases go by while the webhook hangs: renewed, the claim is not taken
            # again, so the manager is not sent the alert a second time.
            await asyncio.sleep(4.5)
            assert len(slow.received) == 1
            slow.release.set()


async def test_a_crashed_senders_claim_comes_back_within_one_lease(
    settings_kwargs: dict[str, Any], database_url: str, directory: Any
) -> None:
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs, sender_lease_s=2.0)
        await add(directory, settings, market="SL", name="Fatmata", webhook=hooks.url("/sl"))
        alert = _alert(Severity.P1, datetime.now(UTC), market="SL")
        async with directory.transaction():
            await route_alerts(connection=directory, alerts=[alert])
        # Another sender claims the alert, then dies before recording anything.
        (claimed,) = await claim_due(
            connection=directory, limit=10, lease_s=settings.sender_lease_s
        )
        async with running(create_app(settings)):
            await until(lambda: len(hooks.bodies("/sl")) == 1, timeout_s=15)
            await asyncio.sleep(0.5)
    (body,) = hooks.bodies("/sl")
    assert body["alert_id"] == str(claimed.alert_id)


async def test_p2_beyond_the_throttle_goes_into_one_digest_and_p1_never_waits(
    settings_kwargs: dict[str, Any], namespace: str, directory: Any
) -> None:
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs, throttle_p2_per_window=2, digest_interval_s=0.5)
        await add(directory, settings, market="MA", name="Youssef", webhook=hooks.url("/ma"))
        p2 = [
            stored_record(submission("MA", feedback__satisfaction=1, feedback__topics=["billing"]))
            for _ in range(5)
        ]
        p1 = [stored_record(submission("MA"), ["fraud"]) for _ in range(3)]
        await produce(SUBMISSIONS_ENRICHED.name(namespace), p2 + p1)
        async with running(create_app(settings)):
            await until(lambda: any("digest" in b for b in hooks.bodies("/ma")))
            await until(lambda: len(hooks.bodies("/ma")) >= 6)
            await asyncio.sleep(1.0)
    bodies = hooks.bodies("/ma")
    singles = [b for b in bodies if "digest" not in b]
    digests = [b for b in bodies if "digest" in b]
    assert sorted(b["severity"] for b in singles) == ["P1", "P1", "P1", "P2", "P2"]
    assert len(digests) == 1 and len(digests[0]["digest"]) == 3
    assert all(item["ack_url"] and item["rule"] for item in digests[0]["digest"])


async def test_unacknowledged_alert_escalates_once_to_the_next_level(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    clock = Clock()
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs)
        manager = await add(directory, settings, market="JO", name="Lina", webhook=hooks.url("/1"))
        await add(directory, settings, market="JO", name="Omar", level=2, webhook=hooks.url("/2"))
        await add(directory, settings, market="*", name="Dir", level=3, webhook=hooks.url("/3"))
        await add(directory, settings, market="EG", name="Other", level=2, webhook=hooks.url("/x"))
        ignored = submission("JO", feedback__urgent=True)
        handled = submission("JO", feedback__urgent=True)
        await produce(
            SUBMISSIONS_ENRICHED.name(namespace), [stored_record(ignored), stored_record(handled)]
        )
        async with running(create_app(settings, now=clock)):
            await until(lambda: len(hooks.bodies("/1")) == 2)
            await directory.execute(
                """UPDATE terrain.alerts SET acknowledged_at = now(), acknowledged_by = $2
                   WHERE submission_id = $1""",
                UUID(handled["submission_id"]),
                manager,
            )
            await asyncio.sleep(1.0)
            assert hooks.bodies("/2") == []  # within the SLA: nobody else is bothered
            clock.offset = timedelta(minutes=16)
            await until(lambda: len(hooks.bodies("/2")) == 1)
            await asyncio.sleep(1.0)
            assert hooks.bodies("/3") == []  # level 2 has its own 15 minutes
            clock.offset = timedelta(minutes=32)
            await until(lambda: len(hooks.bodies("/3")) == 1)
            await asyncio.sleep(0.5)
    assert hooks.bodies("/2")[0]["submission_id"] == ignored["submission_id"]
    assert hooks.bodies("/2")[0]["escalated_level"] == 2
    assert hooks.bodies("/3")[0]["escalated_level"] == 3
    assert len(hooks.bodies("/2")) == 1 and len(hooks.bodies("/3")) == 1
    assert hooks.bodies("/x") == []
    rows = await alerts_of(
        database_url,
        """SELECT a.escalation_detail, a.level FROM terrain.alerts a
           WHERE a.submission_id = $1 ORDER BY a.level""",
        UUID(ignored["submission_id"]),
    )
    assert "level 2" in rows[0]["escalation_detail"] and rows[1]["level"] == 2


async def test_the_link_opens_the_alert_acknowledges_it_and_refuses_tampering(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, directory: Any
) -> None:
    clock = Clock()
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs)
        await add(directory, settings, market="SN", name="Fatou", webhook=hooks.url("/sn"))
        doc = submission(
            "SN",
            feedback__urgent=True,
            feedback__verbatim="<script>alert(1)</script> argent perdu",
            location={"lat": 14.6928, "lon": -17.4467},
        )
        await _store_submission_with_contact(directory, settings, doc, "+221771234567")
        await produce(SUBMISSIONS_ENRICHED.name(namespace), [stored_record(doc)])
        async with running(create_app(settings, now=clock)), httpx.AsyncClient() as client:
            await until(lambda: len(hooks.bodies("/sn")) == 1)
            url = hooks.bodies("/sn")[0]["ack_url"]
            page = await client.get(url)
            assert page.status_code == 200
            assert "&lt;script&gt;" in page.text and "<script>" not in page.text
            assert "+221771234567" in page.text and "14.6928" in page.text
            assert page.headers["cache-control"] == "no-store"
            tampered = url.replace("s=", "s=0")
            assert (await client.get(tampered)).status_code == 403
            fields = dict(httpx.URL(url).params)
            posted = await client.post(
                url.split("?")[0], data={**fields, "action": "acknowledge", "note": "j'appelle"}
            )
            assert posted.status_code == 303
            after = await client.get(url)
            assert "prise en charge" in after.text and "j&#39;appelle" in after.text
            clock.offset = timedelta(days=8)
            assert (await client.get(url)).status_code == 403
    acknowledged = await alerts_of(
        database_url,
        "SELECT acknowledged_at FROM terrain.alerts WHERE submission_id = $1",
        UUID(doc["submission_id"]),
    )
    assert acknowledged[0]["acknowledged_at"] is not None


async def _store_submission_with_contact(
    connection: asyncpg.Connection, settings: Any, doc: dict[str, Any], e164: str
) -> None:
    """What enrich stores for a consenting customer: the submission and the sealed number."""
    submission_id = UUID(doc["submission_id"])
    await connection.execute(
        """INSERT INTO terrain.submissions
               (submission_id, payload_sha256, campaign_id, agent_market, agent_employee_id,
                agent_function, collected_at, received_at, device_id, customer_kind, topics,
                satisfaction, submission, source_partition, source_offset)
           VALUES ($1, 'x', 'mcmb-2025', 'SN', 'SN-1', 'sales', now(), now(), 'd', 'consumer',
                   '{offers}', 4, '{}'::jsonb, 0, 0)""",
        submission_id,
    )
    await connection.execute(
        "INSERT INTO terrain.customer_contacts (submission_id, msisdn_sealed) VALUES ($1, $2)",
        submission_id,
        settings.sealer().seal(e164, context=submission_id.bytes),
    )


async def test_an_undecodable_record_goes_to_the_dead_letters_and_alerts_go_on(
    settings_kwargs: dict[str, Any], namespace: str, directory: Any
) -> None:
    with WebhookSink() as hooks:
        settings = notify_settings(settings_kwargs)
        await add(directory, settings, market="BW", name="Neo", webhook=hooks.url("/bw"))
        urgent = submission("BW", feedback__urgent=True)
        await produce(
            SUBMISSIONS_ENRICHED.name(namespace),
            [(b"poison", b'{"schema_version": 1, "not": "a submission"}'), stored_record(urgent)],
        )
        async with running(create_app(settings)):
            await until(lambda: len(hooks.bodies("/bw")) == 1)
            letters = await read_topic(DEAD_LETTERS.name(namespace), expect=1)
    assert hooks.bodies("/bw")[0]["submission_id"] == urgent["submission_id"]
    assert len(letters) == 1
    letter = json.loads(letters[0].value)
    assert letter["service"] == "notify" and letter["reason"] == "undecodable"
    assert letter["source_topic"] == SUBMISSIONS_ENRICHED.name(namespace)


async def test_escalation_pages_past_alerts_that_are_not_due_yet(
    settings_kwargs: dict[str, Any], database_url: str, directory: Any
) -> None:
    settings = notify_settings(settings_kwargs)
    # Only the escalator runs: an address makes them receivers, nothing is sent.
    await add(
        directory,
        settings,
        market="LR",
        name="Joseph",
        email="joseph@example.lr",
        timezone="Africa/Monrovia",
    )
    await add(directory, settings, market="LR", name="Ruth", email="ruth@example.lr", level=2)
    now = datetime.now(UTC)
    p2 = [_alert(Severity.P2, now) for _ in range(3)]  # older, but within 4 working hours
    p1 = _alert(Severity.P1, now)
    async with directory.transaction():
        await route_alerts(connection=directory, alerts=[*p2, p1])
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        clock = Clock()
        escalator = Escalator(settings=settings, pool=pool, now=clock, wake_sender=asyncio.Event())
        escalator.PAGE = 1  # every candidate on its own page
        clock.offset = timedelta(minutes=16)
        assert await escalator.escalate_overdue() == 1
        clock.offset = timedelta(days=7)
        # The three P2 alerts, and the P1's level-2 alert (nobody above it: recorded so).
        assert await escalator.escalate_overdue() == 4
        assert await escalator.escalate_overdue() == 0  # escalated once
    finally:
        await pool.close()
    levels = await alerts_of(
        database_url,
        "SELECT level, count(*) AS n FROM terrain.alerts WHERE market = 'LR' GROUP BY level",
    )
    assert {r["level"]: r["n"] for r in levels} == {1: 4, 2: 4}


def _alert(severity: Severity, received_at: datetime, market: str = "LR") -> AlertToRecord:
    return AlertToRecord(
        submission_id=uuid4(),
        rule_id=f"{severity.lower()}-test",
        severity=severity,
        signals=[],
        market=market,
        received_at=received_at,
        payload={"market": market},
        ruleset_version="test",
    )
