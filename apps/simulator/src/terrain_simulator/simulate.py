"""`terrain simulate`: set up demo devices, send a field day, verify, print per-market table."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from terrain_cli.devices import register_device
from terrain_contracts.markets import Market
from terrain_simulator.generator import DayOptions, PlannedVisit, field_day
from terrain_simulator.receipts import ReceiptTally, receipts_line, total, wrong_receipt
from terrain_simulator.runner import FieldApps, Outcome, RunStats
from terrain_simulator.verify import Verdict, verify


@dataclass
class SimulationResult:
    visits: list[PlannedVisit]
    sender: FieldApps
    verdict: Verdict


# Visits per device on the simulated day: on the real one, 10,000 employees record 15,000
# visits, each on their own phone; a few per device keeps the per-device rate limit what it
# is for (one runaway app), not a brake on the whole simulated market.
VISITS_PER_DEVICE = 20


async def ensure_devices(
    connection: asyncpg.Connection, label: str, visits: list[PlannedVisit] | None = None
) -> dict[Market, list[str]]:
    """Fresh device tokens for each market, one per VISITS_PER_DEVICE of its visits (tokens
    are shown once, so a run makes its own), registered as an operator would."""
    per_market = Counter(v.market for v in visits or [])
    tokens: dict[Market, list[str]] = {}
    async with connection.transaction():
        for market in Market:
            count = max(1, -(-per_market[market] // VISITS_PER_DEVICE))
            tokens[market] = [
                (await register_device(connection=connection, market=market, label=label))[1]
                for _ in range(count)
            ]
    return tokens


async def connect_patiently(database_url: str, *, patience_s: float) -> asyncpg.Connection:
    """Connect, waiting out a database that is starting or restarting."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return await asyncpg.connect(database_url, timeout=10)
        except (OSError, asyncpg.CannotConnectNowError):  # TimeoutError is an OSError
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


@dataclass(frozen=True)
class SendPlan:
    """How the day is sent: the one place the field apps are configured (pickled to workers)."""

    ingest_url: str
    tokens: dict[Market, list[str]]
    concurrency: int
    rate: float
    seed: int

    def sender(self, on_progress: Callable[[int], None] | None = None) -> FieldApps:
        return FieldApps(
            ingest_url=self.ingest_url,
            tokens=self.tokens,
            concurrency=self.concurrency,
            rate=self.rate,
            on_progress=on_progress,
            seed=self.seed,
        )

    def share(self, index: int, of: int) -> SendPlan:
        """Sending process ``index``'s part of the plan: its connections, rate and seed."""
        return replace(
            self,
            concurrency=max(1, self.concurrency // of),
            rate=self.rate / of,
            seed=self.seed + index,
        )


async def _send_here(visits: list[PlannedVisit], plan: SendPlan, console: Console) -> FieldApps:
    with Progress(
        TextColumn("[bold]field day[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[speed]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("send", total=len(visits), speed="")

        def advance(n: int) -> None:
            done = progress.tasks[0].completed + n
            elapsed = max(sender.stats.seconds, 1e-6)
            progress.update(task, advance=n, speed=f"{done / elapsed:,.0f} visits/s")

        sender = plan.sender(on_progress=advance)
        cpu = time.process_time()
        await sender.run(visits)
        sender.cpu_s = time.process_time() - cpu
    return sender


def _send_slice(
    visits: list[PlannedVisit], plan: SendPlan
) -> tuple[dict[str, Outcome], RunStats, float]:
    """One sending process: its share of the day, its outcomes, stats and the CPU seconds
    the sending took (not the process's start-up)."""
    sender = plan.sender()
    cpu = time.process_time()
    asyncio.run(sender.run(visits))
    return sender.outcomes, sender.stats, time.process_time() - cpu


async def _send_in_processes(visits: list[PlannedVisit], plan: SendPlan, senders: int) -> FieldApps:
    """The day split over ``senders`` processes (one Python process tops out at a few
    hundred requests/s); their outcomes and counts merged into one FieldApps for verify."""
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=senders, mp_context=context) as pool:
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _send_slice, visits[i::senders], plan.share(i, senders))
                for i in range(senders)
            )
        )
    merged = plan.sender()
    merged.stats.started = min(stats.started for _, stats, _ in parts)
    merged.stats.finished = max(stats.finished for _, stats, _ in parts)
    for outcomes, stats, cpu in parts:
        merged.outcomes.update(outcomes)
        merged.stats.requests += stats.requests
        merged.stats.retries += stats.retries
        for status, n in stats.http_status.items():
            merged.stats.http_status[status] = merged.stats.http_status.get(status, 0) + n
        merged.cpu_s += cpu
    return merged


async def simulate(
    *,
    database_url: str,
    ingest_url: str,
    options: DayOptions,
    concurrency: int = 32,
    rate: float = 0.0,
    console: Console | None = None,
    settle_s: float = 120.0,
    senders: int = 1,
) -> SimulationResult:
    # Logs and CI are not terminals: give the per-market table room instead of 80 columns.
    console = console or (Console() if sys.stdout.isatty() else Console(width=140))
    visits = list(field_day(options, now=datetime.now(UTC)))
    connection = await asyncpg.connect(database_url)
    try:
        tokens = await ensure_devices(connection, f"simulator seed {options.seed}", visits)
    finally:
        await connection.close()
    plan = SendPlan(ingest_url, tokens, concurrency, rate, options.seed)
    if senders > 1:
        sender = await _send_in_processes(visits, plan, senders)
    else:
        sender = await _send_here(visits, plan, console)
    console.print(
        f"sent {len(visits):,} visits in {sender.stats.seconds:.1f} s "
        f"({len(visits) / max(sender.stats.seconds, 1e-6):,.0f}/s), "
        f"{sender.stats.requests:,} requests, {sender.stats.retries:,} retries, "
        f"HTTP {dict(sorted(sender.stats.http_status.items()))}"
    )
    console.print("checking the database and the alerts against what was sent...")
    # A new connection: the day may have run across a restart of the database.
    connection = await connect_patiently(database_url, patience_s=settle_s)
    try:
        verdict = await verify(connection, visits, sender.outcomes, settle_s=settle_s)
    finally:
        await connection.close()
    console.print("asking each device for the receipts of the visits it sent...")
    await read_receipts(sender, visits, verdict)
    console.print(summary_table(verdict))
    console.print(receipts_line(verdict.receipts))
    if verdict.ok:
        console.print("[bold green]every promise kept[/]")
    else:
        for problem in verdict.problems[:30]:
            console.print(f"[red]✗[/] {problem}")
    return SimulationResult(visits, sender, verdict)


async def read_receipts(
    sender: FieldApps, visits: list[PlannedVisit], verdict: Verdict, *, settle_s: float = 30.0
) -> None:
    """The devices read their receipts and the verdict judges them. A receipt not yet as
    expected is asked again until ``settle_s``: notify may record an alert seconds after
    the visit is stored, and an app asks again later too."""
    expected = {e.submission_id: e for e in verdict.expected_receipts}
    asking = [v for v in visits if v.submission_id in expected]
    received = await sender.receipts(asking)
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        asking = [
            v
            for v in asking
            if wrong_receipt(expected[v.submission_id], received.get(v.submission_id))
        ]
        if not asking:
            break
        await asyncio.sleep(1.0)
        received.update(await sender.receipts(asking))
    verdict.judge_receipts(received)


def summary_table(verdict: Verdict) -> Table:
    table = Table(title="Field day, per market")
    columns = (
        ("market", "left"), ("visits", "right"), ("accepted", "right"), ("rejected", "right"),
        ("stored", "right"), ("missing", "right"), ("urgent", "right"),
        ("alerts exp.", "right"), ("delivered", "right"), ("dup.", "right"), ("misrouted", "right"),
        ("receipts", "right"),
    )  # fmt: skip
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]

    fields = (
        "visits", "accepted", "rejected", "stored", "missing", "urgent", "alerts_expected",
        "alerts_delivered", "alerts_duplicated", "alerts_wrong_market",
    )  # fmt: skip

    def row(label: str, s: object, receipts: ReceiptTally) -> list[str]:
        # Receipts that told what was expected, of those asked.
        told = f"{receipts.right:,}/{receipts.asked:,}"
        return [label] + [f"{getattr(s, n):,}" for n in fields] + [told]

    for market, summary in sorted(verdict.markets.items()):
        table.add_row(*row(market.value, summary, verdict.receipts.get(market, ReceiptTally())))
    table.add_row(*row("all", verdict.total(), total(verdict.receipts)), style="bold")
    return table
