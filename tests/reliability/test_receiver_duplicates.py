"""The send-then-crash window, measured where it shows: at the receivers.

Notify delivers an alert, then records the delivery. Killed (SIGKILL) in between, it has
delivered and not recorded: the claim's lease lapses and the alert is delivered again. No
table of Terrain's sees that second delivery as a duplicate; the receiver does. So this
test kills notify exactly there — while the webhook receiver holds a request and has not
answered yet — again and again while alerts go out by webhook, email and SMS, counts
every raw reception at the three receivers, and checks that dropping by the key each
channel carries (webhook ``idempotency-key`` header, email ``Message-ID``, SMS gateway
``reference``, all the alert id) leaves each alert exactly once on each channel. The raw
duplicate rate goes to .local/test-logs/reliability.jsonl for docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from terrain_simulator.generator import DayOptions
from terrain_simulator.simulate import simulate
from terrain_testkit.factories import country_managers, notify_receivers_env
from terrain_testkit.processes import LOG_DIR, Stack
from terrain_testkit.sinks import SmtpSink, WebhookSink

SCALE = int(os.environ.get("TERRAIN_FAULT_SCALE", "1"))
KILLS = 8 * SCALE
# A receiver that takes a moment to answer: the window between "received" and "recorded"
# is then the receiver's latency, as with a real webhook across the internet.
ANSWER_AFTER_S = 0.1

pytestmark = pytest.mark.timeout(240 * SCALE)


@pytest.fixture
def sms_gateway() -> Iterator[WebhookSink]:
    with WebhookSink(answer_after_s=ANSWER_AFTER_S) as gateway:
        yield gateway


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def stack_env(sms_gateway: WebhookSink, smtp: SmtpSink) -> dict[str, str]:
    return {
        **notify_receivers_env(smtp, sms_gateway),
        # A killed sender's claims come back after the lease: short, so the day settles.
        "NOTIFY__TERRAIN_SENDER_LEASE_S": "3",
        "NOTIFY__TERRAIN_RETRY_BASE_S": "0.2",
        "NOTIFY__TERRAIN_RETRY_MAX_S": "2",
    }


def _alert_id(message_id: str) -> str:
    found = re.search(r"<([^@>]+)@", message_id)
    return found.group(1) if found else message_id


async def test_notify_killed_while_delivering_every_channel_once_per_idempotency_key(
    stack: Stack, database_url: str, smtp: SmtpSink, sms_gateway: WebhookSink
) -> None:
    options = DayOptions(visits=900 * SCALE, seed=37, campaign_id="receiver-duplicates")
    kills = 0
    restarted = threading.Event()
    restarted.set()

    def kill_inside_the_window(path: str) -> None:
        # Every tenth webhook, while the receiver has it and notify waits for the answer:
        # SIGKILL, so the delivery is made and never recorded.
        nonlocal kills
        if kills >= KILLS or not restarted.is_set() or len(hooks.received) % 10:
            return
        process = stack.processes.get("notify")
        if process is not None and process.poll() is None:
            restarted.clear()
            kills += 1
            process.send_signal(signal.SIGKILL)

    async def restart_notify() -> None:
        while True:
            process = stack.processes.get("notify")
            if process is not None and process.poll() is not None:
                stack.processes.pop("notify")
                stack.start("notify")
                restarted.set()
            await asyncio.sleep(0.2)

    with WebhookSink(answer_after_s=ANSWER_AFTER_S) as hooks:
        hooks.on_receive = kill_inside_the_window
        async with country_managers(database_url, hooks, email=True, sms=True):
            restarter = asyncio.create_task(restart_notify())
            try:
                result = await simulate(
                    database_url=database_url, ingest_url=stack.ingest_url, options=options,
                    rate=60, concurrency=8, settle_s=90,
                )  # fmt: skip
                webhook_keys = await _settled(hooks.by_idempotency_key)
                email_ids = await _settled(smtp.by_message_id)
                sms_references = await _settled(sms_gateway.by_reference)
            finally:
                restarter.cancel()
            severities = {str(body["alert_id"]): body.get("severity") for body in hooks.bodies()}
    alerts = set(webhook_keys)
    emailed = {_alert_id(m) for m in email_ids}
    p1 = {a for a, severity in severities.items() if severity == "P1"}
    figures: dict[str, Any] = {
        "scenario": "notify SIGKILLed while delivering (receivers)",
        "visits": options.visits,
        "kills_inside_the_window": kills,
        "alerts": len(alerts),
        "p1_alerts": len(p1),
        "webhook_raw": sum(webhook_keys.values()),
        "email_raw": sum(email_ids.values()),
        "sms_raw": sum(sms_references.values()),
        "webhook_duplicates": sum(n - 1 for n in webhook_keys.values()),
        "email_duplicates": sum(n - 1 for n in email_ids.values()),
        "sms_duplicates": sum(n - 1 for n in sms_references.values()),
    }
    raw = figures["webhook_raw"] + figures["email_raw"] + figures["sms_raw"]
    duplicates = (
        figures["webhook_duplicates"] + figures["email_duplicates"] + figures["sms_duplicates"]
    )
    figures["duplicate_rate"] = round(duplicates / max(raw, 1), 5)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / "reliability.jsonl").open("a") as out:
        out.write(json.dumps(figures) + "\n")
    print("receivers:", json.dumps(figures))
    assert result.verdict.total().alerts_expected > 20  # alerts were going out
    # Dropped by its key, every alert is on each of its channels exactly once: email for
    # every alert, SMS for the P1 ones (SMS wakes people up), nothing else.
    assert emailed == alerts, (len(emailed), len(alerts))
    assert set(sms_references) == p1, (len(sms_references), len(p1))
    assert "" not in alerts and "" not in sms_references
    assert kills == KILLS  # the window was hit that many times
    # Each kill inside the window made at least the delivery in hand a raw duplicate: the
    # window is real, and only the key above makes it harmless.
    assert figures["webhook_duplicates"] >= kills
    # And the tables agree: every visit stored once, every urgent one alerted once.
    assert result.verdict.ok, result.verdict.problems[:10]


async def _settled(
    count: Callable[[], Counter[str]], *, quiet_s: float = 3.0, timeout_s: float = 30.0
) -> dict[str, int]:
    """The receptions once nothing new came for ``quiet_s`` (late redeliveries included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = dict(count())
    quiet_since = loop.time()
    while loop.time() < deadline and loop.time() - quiet_since < quiet_s:
        await asyncio.sleep(0.5)
        now = dict(count())
        if now != last:
            last, quiet_since = now, loop.time()
    return last
