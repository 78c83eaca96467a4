"""After the run: check every promise against the database, per market.

- every visit answered 2xx is stored exactly once (or is in failed submissions, with why);
- no resend of a visit (a fresh ``sent_at``, maybe a newer ``app`` block) is filed as a
  conflict: the simulator never changes what an agent recorded;
- every invalid visit was rejected, naming the field that was wrong, and is not stored;
- every urgent visit produced exactly one alert per active level-1 manager of its market,
  delivered once, and no manager got another market's alert;
- every visit's receipt, as its device reads it back online, tells the same
  (``terrain_simulator.receipts``): stored, with the alert raised, or unknown when refused.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import asyncpg

from terrain_contracts.markets import Market
from terrain_contracts.receipts import SubmissionReceipt
from terrain_simulator.generator import PlannedVisit
from terrain_simulator.receipts import ExpectedReceipt, ReceiptTally, compare
from terrain_simulator.runner import Outcome

CHUNK = 10_000


@dataclass
class MarketSummary:
    visits: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_as_expected: int = 0
    failed: int = 0
    stored: int = 0
    missing: int = 0
    failed_store: int = 0
    wrongly_stored: int = 0
    false_conflicts: int = 0
    urgent: int = 0
    alerts_expected: int = 0
    alerts: int = 0
    alerts_delivered: int = 0
    alerts_duplicated: int = 0
    alerts_wrong_market: int = 0


@dataclass
class Verdict:
    markets: dict[Market, MarketSummary] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    alert_latencies_s: list[float] = field(default_factory=list)
    # What each answered visit's receipt must say, and what the receipts said, per market.
    expected_receipts: list[ExpectedReceipt] = field(default_factory=list)
    receipts: dict[Market, ReceiptTally] = field(default_factory=dict)

    def judge_receipts(self, received: Mapping[str, SubmissionReceipt]) -> None:
        """Tally the receipts the devices received; a wrong one is a broken promise."""
        self.receipts = compare(self.expected_receipts, received)
        for market, tally in sorted(self.receipts.items()):
            if tally.wrong:
                self.problems.append(
                    f"{market.value}: {len(tally.wrong)} wrong receipts, e.g. "
                    + "; ".join(tally.wrong[:3])
                )

    @property
    def ok(self) -> bool:
        return not self.problems

    def total(self) -> MarketSummary:
        total = MarketSummary()
        for summary in self.markets.values():
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(summary, name))
        return total


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def _fetch_ids(connection: asyncpg.Connection, sql: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(str(r[0]) for r in await connection.fetch(sql, chunk))
    return found


async def verify(
    connection: asyncpg.Connection,
    visits: list[PlannedVisit],
    outcomes: dict[str, Outcome],
    *,
    settle_s: float = 60.0,
    alert_settle_s: float = 30.0,
) -> Verdict:
    verdict = Verdict()
    accepted = [
        v.submission_id
        for v in visits
        if outcomes.get(v.submission_id, Outcome()).status == "accepted"
    ]
    stored_sql = (
        "SELECT submission_id FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])"
    )
    failed_sql = (
        "SELECT DISTINCT submission_id FROM terrain.failed_submissions"
        " WHERE submission_id = ANY($1::uuid[])"
    )
    deadline = time.monotonic() + settle_s
    stored = await _fetch_ids(connection, stored_sql, accepted)
    while len(stored) < len(accepted) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        stored |= await _fetch_ids(connection, stored_sql, [i for i in accepted if i not in stored])
    # Any failure of an accepted id, stored or not: a receipt may tell it (a conflict).
    recorded_failures = await _fetch_ids(connection, failed_sql, accepted)
    failed_store = recorded_failures - stored
    conflicts = await _fetch_ids(
        connection,
        "SELECT DISTINCT submission_id FROM terrain.failed_submissions"
        " WHERE reason = 'conflict' AND submission_id = ANY($1::uuid[])",
        [v.submission_id for v in visits if v.sends > 1],
    )
    rejected_ids = [
        v.submission_id
        for v in visits
        if outcomes.get(v.submission_id, Outcome()).status == "rejected"
    ]
    wrongly_stored = await _fetch_ids(connection, stored_sql, rejected_ids)

    managers: dict[str, set[str]] = defaultdict(set)
    for row in await connection.fetch(
        "SELECT manager_id, market FROM terrain.managers WHERE active AND level = 1"
    ):
        managers[row["market"]].add(str(row["manager_id"]))
    urgent_ids = [v.submission_id for v in visits if v.urgent and v.submission_id in stored]
    alert_sql = """
        SELECT a.submission_id, a.manager_id, a.rule_id, a.market, a.status,
               m.market AS manager_market,
               extract(epoch FROM a.delivered_at - a.received_at) AS latency_s,
               (SELECT count(*) - count(DISTINCT d.channel) FROM terrain.alert_deliveries d
                WHERE d.alert_id = a.alert_id AND d.ok) AS duplicate_messages
        FROM terrain.alerts a JOIN terrain.managers m USING (manager_id)
        WHERE a.submission_id = ANY($1::uuid[])
    """
    # Each urgent visit's own managers, not a total: alerts on several rules of one visit
    # could make up for another visit's missing ones.
    awaited = {
        (v.submission_id, m)
        for v in visits
        if v.urgent and v.submission_id in stored
        for m in managers[v.market.value]
    }
    deadline = time.monotonic() + alert_settle_s
    while True:
        rows = []
        for chunk in _chunks(urgent_ids):
            rows.extend(await connection.fetch(alert_sql, chunk))
        reached = {
            (str(r["submission_id"]), str(r["manager_id"]))
            for r in rows
            if r["status"] == "delivered"
        }
        if awaited <= reached or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)

    by_visit: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        by_visit[str(row["submission_id"])].append(row)
        if row["latency_s"] is not None:
            verdict.alert_latencies_s.append(float(row["latency_s"]))

    for visit in visits:
        summary = verdict.markets.setdefault(visit.market, MarketSummary())
        outcome = outcomes.get(visit.submission_id, Outcome())
        if outcome.status in ("accepted", "rejected"):
            verdict.expected_receipts.append(
                ExpectedReceipt(
                    visit.submission_id,
                    visit.market,
                    accepted=outcome.status == "accepted",
                    failure_recorded=visit.submission_id in recorded_failures,
                    alert=(
                        visit.urgent
                        and visit.submission_id in stored
                        and bool(managers[visit.market.value])
                    ),
                )
            )
        summary.visits += 1
        if outcome.status == "accepted":
            summary.accepted += 1
            if visit.submission_id in conflicts:
                summary.false_conflicts += 1
            if visit.submission_id in stored:
                summary.stored += 1
            elif visit.submission_id in failed_store:
                summary.failed_store += 1
            else:
                summary.missing += 1
        elif outcome.status == "rejected":
            summary.rejected += 1
            fields = {e.get("field", "") for e in outcome.errors}
            if not visit.expected_valid and any(
                visit.invalid_field and f.endswith(visit.invalid_field) for f in fields
            ):
                summary.rejected_as_expected += 1
            else:
                verdict.problems.append(
                    f"{visit.submission_id} rejected unexpectedly: {sorted(fields)}"
                )
            if visit.submission_id in wrongly_stored:
                summary.wrongly_stored += 1
        else:
            summary.failed += 1
        if not visit.expected_valid and outcome.status == "accepted":
            verdict.problems.append(
                f"{visit.submission_id} accepted though {visit.invalid_field} is invalid"
            )
        if visit.urgent and visit.submission_id in stored:
            summary.urgent += 1
            expected = managers[visit.market.value]
            summary.alerts_expected += len(expected)
            alerts = by_visit.get(visit.submission_id, [])
            summary.alerts += len(alerts)
            summary.alerts_delivered += sum(
                1 for a in alerts if a["status"] == "delivered" and str(a["manager_id"]) in expected
            )
            # One delivery per channel is the alert once on each of the manager's channels.
            summary.alerts_duplicated += sum(a["duplicate_messages"] for a in alerts)
            per_manager = Counter((str(a["manager_id"]), a["rule_id"]) for a in alerts)
            summary.alerts_duplicated += sum(n - 1 for n in per_manager.values() if n > 1)
            # Regional directors (market '*') may get it by escalation; nobody else may.
            summary.alerts_wrong_market += sum(
                1 for a in alerts if a["manager_market"] not in (visit.market.value, "*")
            )

    for market, summary in sorted(verdict.markets.items()):
        label = market.value
        if summary.missing:
            verdict.problems.append(f"{label}: {summary.missing} accepted visits are not stored")
        if summary.failed:
            verdict.problems.append(f"{label}: {summary.failed} visits never acknowledged")
        if summary.false_conflicts:
            verdict.problems.append(
                f"{label}: {summary.false_conflicts} resent visits filed as conflicts"
            )
        if summary.wrongly_stored:
            verdict.problems.append(f"{label}: {summary.wrongly_stored} rejected visits are stored")
        if summary.alerts_delivered < summary.alerts_expected:
            undelivered = summary.alerts_expected - summary.alerts_delivered
            verdict.problems.append(f"{label}: {undelivered} urgent alerts not delivered")
        if summary.alerts_duplicated or summary.alerts_wrong_market:
            verdict.problems.append(
                f"{label}: {summary.alerts_duplicated} duplicated,"
                f" {summary.alerts_wrong_market} misrouted alerts"
            )
    return verdict
