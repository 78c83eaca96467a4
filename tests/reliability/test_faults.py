"""Fault scenarios with real processes: the simulator sends at a steady rate while one
fault is injected, then its verification checks the invariants — every visit answered 2xx
stored exactly once, every invalid one rejected, every urgent one alerted exactly once to
its market's managers — and no phone number appears in any service's output.

Duplicates are counted where a manager would see them: at the receiving webhook, from what
it got, not from Terrain's tables (a delivery made just before a crash, and so never
recorded, is only visible there). Where the fault can land between delivering and
recording (notify killed, PostgreSQL away), raw duplicates may occur and the receiver drops
them by the ``idempotency-key`` header: what must then hold is that every urgent visit
reached each of its managers under exactly one key."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from terrain_contracts.topics import SUBMISSIONS_ENRICHED, SUBMISSIONS_RAW
from terrain_simulator.generator import DayOptions
from terrain_simulator.runner import Outcome
from terrain_simulator.simulate import SimulationResult, simulate
from terrain_testkit.factories import country_managers, notify_receivers_env
from terrain_testkit.privacy import database_text, national_numbers, phone_numbers_in, topics_text
from terrain_testkit.processes import LOG_DIR, Stack, local_service
from terrain_testkit.sinks import SmtpSink, WebhookSink
from terrain_testkit.topics import produce

Fault = Callable[[Stack], Awaitable[None]]


@dataclass
class Receivers:
    """The managers' email and SMS receivers (their webhook is made per day)."""

    smtp: SmtpSink
    sms: WebhookSink


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with SmtpSink() as smtp, WebhookSink() as sms:
        yield Receivers(smtp, sms)


@pytest.fixture
def stack_env(receivers: Receivers) -> dict[str, str]:
    return notify_receivers_env(receivers.smtp, receivers.sms)


# `make soak` runs each scenario with SCALE times the visits (and kills); CI runs SCALE 1.
SCALE = int(os.environ.get("TERRAIN_FAULT_SCALE", "1"))


async def run_day(
    stack: Stack,
    database_url: str,
    fault: Fault,
    *,
    receivers: Receivers,
    options: DayOptions,
    rate: float,
    fault_after_s: float = 1.5,
    crash_window: bool = False,
) -> SimulationResult:
    """``crash_window``: the fault may fall between a delivery and its record (raw
    duplicates at the receiver are then counted, not refused)."""
    with WebhookSink() as sink:
        async with country_managers(database_url, sink, email=True, sms=True):
            day = asyncio.create_task(
                simulate(database_url=database_url, ingest_url=stack.ingest_url, options=options,
                         rate=rate, concurrency=8, settle_s=90)
            )  # fmt: skip
            await asyncio.sleep(fault_after_s)
            await fault(stack)
            result = await day
            received = await at_the_receiver(sink, receivers, result)
    record_result(options, rate, result, received)
    assert result.verdict.ok, result.verdict.problems[:10]
    assert not received["problems"], received["problems"][:10]
    if not crash_window:
        assert received["raw_duplicates"] == 0, received
    assert_no_phone_numbers_in_logs(stack, result)
    await assert_no_phone_numbers_stored(stack, database_url, result)
    return result


def _sent_numbers(result: SimulationResult) -> set[str]:
    return national_numbers(
        {
            v.document["customer"]["msisdn"]: v.market.value
            for v in result.visits
            if v.document["customer"].get("msisdn")
        }
    )


async def assert_no_phone_numbers_stored(
    stack: Stack, database_url: str, result: SimulationResult
) -> None:
    """Every text column of every table, and every record (value and headers) of every
    topic: no number the field sent is there in clear (pseudonyms are hex, sealed numbers
    are base64)."""
    numbers = _sent_numbers(result)
    for column, text in (await database_text(database_url)).items():
        leaked = phone_numbers_in(text, numbers)
        assert not leaked, f"{len(leaked)} phone numbers in clear in {column}"
    for topic, text in (await topics_text(stack.env["TERRAIN_TOPIC_NAMESPACE"])).items():
        leaked = phone_numbers_in(text, numbers)
        assert not leaked, f"{len(leaked)} phone numbers in clear in topic {topic}"


async def at_the_receiver(
    sink: WebhookSink, receivers: Receivers, result: SimulationResult, *, settle_s: float = 30.0
) -> dict[str, Any]:
    """What the managers' webhook, mail server and SMS gateway got: raw receptions,
    distinct ones by each channel's key (idempotency-key header, Message-ID, reference),
    whether each urgent visit accepted reached each of its market's managers under exactly
    one key (the simulator's managers are on /<market>), and whether every alert the
    webhook got came by email too, and by SMS when it is P1."""
    urgent = {
        v.submission_id: v.market.value
        for v in result.visits
        if v.urgent and result.sender.outcomes.get(v.submission_id, Outcome()).status == "accepted"
    }
    deadline = asyncio.get_running_loop().time() + settle_s
    while True:
        reached = {(p, json.loads(b).get("submission_id")) for p, _, b in list(sink.received)}
        if all((f"/{m}", i) in reached for i, m in urgent.items()):
            break
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    keys: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for path, headers, body in list(sink.received):
        alert = json.loads(body)
        keys[(path, alert.get("submission_id"), alert.get("rule"))].add(
            headers.get("idempotency-key", "")
        )
    per_key = sink.by_idempotency_key()
    by_message_id = receivers.smtp.by_message_id()
    by_reference = receivers.sms.by_reference()
    emailed = {re.sub(r"^<([^@>]+)@.*$", r"\1", m) for m in by_message_id}
    p1 = {str(b["alert_id"]) for b in sink.bodies() if b.get("severity") == "P1"}
    problems = []
    if emailed != set(per_key):
        problems.append(f"{len(set(per_key) - emailed)} alerts not emailed, "
                        f"{len(emailed - set(per_key))} emailed only")  # fmt: skip
    if set(by_reference) != p1:
        problems.append(f"{len(p1 - set(by_reference))} P1 alerts without SMS, "
                        f"{len(set(by_reference) - p1)} SMS not for a P1 alert")  # fmt: skip
    problems += [
        f"{i} ({m}) never reached its manager"
        for i, m in urgent.items()
        if (f"/{m}", i) not in reached
    ]
    problems += [
        f"{sid} reached {path} under {len(found)} keys for rule {rule}"
        for (path, sid, rule), found in keys.items()
        if len(found) > 1
    ]
    channels = (per_key, by_message_id, by_reference)
    return {
        "received_raw": sum(sum(c.values()) for c in channels),
        "received_distinct": sum(len(c) for c in channels),
        "raw_duplicates": sum(n - 1 for c in channels for n in c.values()),
        "problems": problems,
    }


def record_result(
    options: DayOptions, rate: float, result: SimulationResult, received: dict[str, Any]
) -> None:
    """One line per scenario in .local/test-logs/reliability.jsonl: the figures of
    docs/RELIABILITY.md's table."""
    total = result.verdict.total()
    row = {
        "scenario": os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0],
        "visits": options.visits,
        "rate": rate or "max",
        "requests": result.sender.stats.requests,
        "accepted": total.accepted,
        "rejected": total.rejected,
        "stored": total.stored,
        "lost": total.missing + total.failed,
        "alerts_expected": total.alerts_expected,
        "alerts_delivered": total.alerts_delivered,
        "alerts_duplicated": total.alerts_duplicated + total.alerts_wrong_market,
        "received_raw": received["received_raw"],
        "received_distinct": received["received_distinct"],
        "receiver_duplicates": received["raw_duplicates"],
        "receiver_problems": received["problems"][:3],
        "ok": result.verdict.ok and not received["problems"],
    }
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / "reliability.jsonl").open("a") as out:
        out.write(json.dumps(row) + "\n")


def assert_no_phone_numbers_in_logs(stack: Stack, result: SimulationResult) -> None:
    leaked = phone_numbers_in(stack.output(), _sent_numbers(result))
    assert not leaked, f"{len(leaked)} phone numbers in the services' logs"


def kill_and_restart(service: str, times: int, every_s: float) -> Fault:
    async def fault(stack: Stack) -> None:
        for _ in range(times):
            stack.processes[service].send_signal(signal.SIGKILL)
            await asyncio.to_thread(stack.processes[service].wait)
            stack.processes.pop(service)
            await asyncio.sleep(0.5)
            stack.start(service)
            await asyncio.sleep(every_s)

    return fault


async def test_enrich_killed_three_times_mid_batch(
    stack: Stack, database_url: str, receivers: Receivers
) -> None:
    options = DayOptions(visits=900 * SCALE, seed=31, campaign_id="fault-enrich")
    await run_day(
        stack, database_url, kill_and_restart("enrich", 3 * SCALE, 2.0), options=options, rate=150,
        receivers=receivers,
    )  # fmt: skip


async def test_notify_killed_while_alerting(
    stack: Stack, database_url: str, receivers: Receivers
) -> None:
    options = DayOptions(visits=600 * SCALE, seed=32, campaign_id="fault-notify")
    await run_day(
        stack, database_url, kill_and_restart("notify", 2 * SCALE, 1.5), options=options, rate=150,
        receivers=receivers, crash_window=True,
    )  # fmt: skip


def local_outage(service: str, down_s: float) -> Fault:
    """Stop the broker or the cluster the whole stack uses, keep it down, start it again."""

    async def fault(_: Stack) -> None:
        stop = await asyncio.to_thread(local_service, service, "stop")
        assert stop.returncode == 0, stop.stderr
        try:
            await asyncio.sleep(down_s)
        finally:
            start = await asyncio.to_thread(local_service, service, "start")
        assert start.returncode == 0, start.stderr

    return fault


def require_local(service: str) -> None:
    if local_service(service, "status").returncode != 0:
        pytest.skip(f"{service} is not the local one deploy/local/{service}.sh may stop")


async def test_postgres_stopped_30_s_under_load(
    stack: Stack, database_url: str, receivers: Receivers
) -> None:
    """Ingest keeps taking visits (devices it knows are served from its cache), enrich and
    notify wait and retry, then everything is stored and alerted once."""
    require_local("postgres")
    options = DayOptions(visits=1500 * SCALE, seed=35, campaign_id="pg-outage")
    await run_day(
        stack, database_url, local_outage("postgres", 30), options=options, rate=50,
        fault_after_s=3, crash_window=True, receivers=receivers,
    )  # fmt: skip


async def test_kafka_broker_restarted_under_load(
    stack: Stack, database_url: str, receivers: Receivers
) -> None:
    """Ingest answers 503 while the broker is away and the field app's retries then get
    through; the consumers reconnect and resume from their committed offsets."""
    require_local("kafka")
    options = DayOptions(visits=1000 * SCALE, seed=36, campaign_id="kafka-restart")
    result = await run_day(
        stack, database_url, local_outage("kafka", 10), options=options, rate=50,
        fault_after_s=3, receivers=receivers,
    )  # fmt: skip
    assert result.sender.stats.http_status.get(503, 0) > 0  # the outage was seen


async def test_resend_storm(stack: Stack, database_url: str, receivers: Receivers) -> None:
    options = DayOptions(
        visits=400 * SCALE, seed=33, campaign_id="storm", resend_share=1.0, resend_copies=(3,)
    )

    async def nothing(_: Stack) -> None:
        return None

    result = await run_day(
        stack, database_url, nothing, options=options, rate=0, receivers=receivers
    )
    # Singles alone send 3 requests each.
    assert result.sender.stats.requests >= 400 * SCALE * 3 * 0.6


async def test_poison_records_go_to_the_dead_letters_and_the_stream_goes_on(
    stack: Stack,
    database_url: str,
    namespace: str,
    receivers: Receivers,
) -> None:
    poison = [
        (b"garbage", b"\x00\xff\xfe not json at all"),
        (b"v9", b'{"schema_version": 9, "submission_id": "x"}'),
        (b"big", b'{"schema_version": 1, "pad": "' + b"x" * 900_000 + b'"}'),
    ]

    async def inject(_: Stack) -> None:
        await produce(SUBMISSIONS_RAW.name(namespace), poison)
        await produce(SUBMISSIONS_ENRICHED.name(namespace), poison[:2])

    started = datetime.now(UTC)
    options = DayOptions(visits=500 * SCALE, seed=34, campaign_id="poison")
    await run_day(stack, database_url, inject, options=options, rate=150, receivers=receivers)
    connection = await asyncpg.connect(database_url)
    try:
        reasons = await connection.fetch(
            """SELECT service, reason, count(*) FROM terrain.failed_submissions
               WHERE failed_at >= $1 GROUP BY 1, 2""",
            started,
        )
    finally:
        await connection.close()
    by_reason = {(r["service"], r["reason"]): r["count"] for r in reasons}
    assert by_reason.get(("enrich", "undecodable")) == 1
    assert by_reason.get(("enrich", "unknown_schema_version")) == 1
    assert sum(n for (service, _), n in by_reason.items() if service == "enrich") == 3


pytestmark = pytest.mark.timeout(240 * SCALE)
