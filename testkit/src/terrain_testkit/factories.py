"""What tests start from: field submissions, the messages the services make of them (built
the way the services do, for tests of the later stages), and managers to alert.

A whole field day of realistic visits comes from the simulator's generator
(``terrain_simulator.generator.field_day``); these are single visits a test shapes."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import asyncpg

from ingest.logic import Device, receive, validate
from notify.directory import ManagerSpec
from notify.managers import store_managers
from terrain_contracts.examples import load
from terrain_contracts.markets import Market
from terrain_contracts.messages import Enrichment, SubmissionReceivedV1, SubmissionStoredV1
from terrain_runtime.settings import TerrainSettings

if TYPE_CHECKING:
    from terrain_testkit.sinks import SmtpSink, WebhookSink

_SETTINGS = TerrainSettings(environment="test")


def field_submission(**changes: Any) -> dict[str, Any]:
    """The contract's example submission with a fresh ``submission_id`` and ``changes``:
    ``agent__market="CI"`` sets ``document["agent"]["market"]``."""
    document = copy.deepcopy(load("field_submission.dakar"))
    document["submission_id"] = str(uuid4())
    for dotted, value in changes.items():
        target = document
        *path, last = dotted.split("__")
        for key in path:
            target = target.setdefault(key, {})
        target[last] = value
    return document


def raw_envelope(document: dict[str, Any] | None = None) -> SubmissionReceivedV1:
    """``document`` (default: a fresh example) as ingest publishes it."""
    document = document or field_submission()
    market = Market(document["agent"]["market"])
    return receive(
        validate(document),
        device=Device(UUID(int=1), market, "test"),
        received_at=datetime.now(UTC),
        pseudonymiser=_SETTINGS.pseudonymiser(),
        sealer=_SETTINGS.sealer(),
        ingest_version="test",
    )


def raw_record(document: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
    """``raw_envelope`` as a (key, value) record of the raw topic."""
    envelope = raw_envelope(document)
    return str(envelope.submission_id).encode(), envelope.model_dump_json().encode()


def stored_record(
    document: dict[str, Any] | None = None, signals: list[str] | None = None
) -> tuple[bytes, bytes]:
    """``document`` as enrich publishes it once stored, with these ``signals``: a (key,
    value) record of the enriched topic."""
    envelope = raw_envelope(document)
    stored = SubmissionStoredV1(
        submission_id=envelope.submission_id,
        market=envelope.submission.agent.market,
        received_at=envelope.received_at,
        stored_at=datetime.now(UTC),
        enrichment=Enrichment(signals=signals or []),
        submission=envelope.submission,
    )
    return str(stored.submission_id).encode(), stored.model_dump_json().encode()


@contextlib.asynccontextmanager
async def country_managers(
    database_url: str,
    sink: WebhookSink,
    *,
    markets: Sequence[str] | None = None,
    email: bool = False,
    sms: bool = False,
    director: bool = False,
) -> AsyncIterator[list[Any]]:
    """A level-1 manager per market (or per one of ``markets``) whose webhook is ``sink``,
    with an email address (``email``) and an SMS number (``sms``) too if asked, and a
    regional director ('*', level 3) on ``sink``'s /dir if ``director``; deactivated
    afterwards so the next test's expectations are not inflated by managers whose inbox is
    gone. Each manager's email is <market>@managers.test, its SMS number a Senegalese one."""
    chosen = markets if markets is not None else [m.value for m in Market]
    specs = [
        ManagerSpec(
            market=market, name=f"CM {market}", role="country_manager",
            webhook=sink.url(f"/{market}"),
            email=f"{market.lower()}@managers.test" if email else None,
            sms=f"+22177{index:07d}" if sms else None,
        )
        for index, market in enumerate(chosen)
    ]  # fmt: skip
    if director:
        specs.append(
            ManagerSpec(
                market="*", name="Regional director", role="regional_director", level=3,
                webhook=sink.url("/dir"), email="dir@managers.test" if email else None,
            )
        )  # fmt: skip
    connection = await asyncpg.connect(database_url)
    try:
        sealer = TerrainSettings(environment="test").sealer()
        ids: list[Any] = await store_managers(connection=connection, specs=specs, sealer=sealer)
    finally:
        await connection.close()
    try:
        yield ids
    finally:
        # A connection of its own: the test may have restarted the database meanwhile.
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(
                "UPDATE terrain.managers SET active = false WHERE manager_id = ANY($1::uuid[])",
                ids,
            )
        finally:
            await connection.close()


def notify_receivers_env(smtp: SmtpSink, sms_gateway: WebhookSink) -> dict[str, str]:
    """What the stack's notify needs to send its emails to ``smtp`` and its SMS through
    ``sms_gateway``: the e2e and reliability tests count every alert at these receivers."""
    return {
        "NOTIFY__TERRAIN_SMTP_HOST": "127.0.0.1",
        "NOTIFY__TERRAIN_SMTP_PORT": str(smtp.port),
        "NOTIFY__TERRAIN_SMS_GATEWAY_URL": sms_gateway.url("/sms"),
    }
