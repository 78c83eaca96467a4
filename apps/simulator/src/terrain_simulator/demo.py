"""`terrain demo`: one visit through the running stack, shown the way each user sees it.

The field app's view (the 202), the analyst's (the stored row), the country manager's (the
webhook alert); then a whole field day, checked, and its report. The demo phone and the
managers (one per market, whose 'tool' is the demo's inbox) are set up through the CLI's
functions, as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import typer

from terrain_cli.devices import register_device
from terrain_cli.managers import ensure_webhook_manager
from terrain_contracts.examples import load
from terrain_contracts.markets import Market
from terrain_simulator.generator import DayOptions
from terrain_simulator.report import build_report
from terrain_simulator.simulate import simulate


async def field_day(
    database_url: str,
    ingest_url: str,
    visits: int,
    report_dir: Path,
    connection: asyncpg.Connection,
    started: datetime,
) -> None:
    """Replay a 'My Customer, My Boss' day through the stack, check it, write the report."""
    campaign = f"demo-{started:%Y%m%d-%H%M%S}"
    # A day of its own each run: with the seed of an earlier demo its visits would reuse
    # that day's submission ids with new contents, which Terrain rightly files as conflicts.
    seed = int(started.timestamp())
    typer.echo(f"\nA field day: {visits:,} visits in 17 markets (campaign {campaign}, seed {seed})")
    result = await simulate(
        database_url=database_url,
        ingest_url=ingest_url,
        options=DayOptions(visits=visits, campaign_id=campaign, seed=seed),
    )
    html = await build_report(connection, campaign=campaign, since=started)
    report_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - one small local write
    path = report_dir / f"{campaign}.html"
    path.write_text(html, "utf-8")
    typer.echo(f"campaign report: {path.resolve()}")
    if not result.verdict.ok:
        raise typer.Exit(1)


class AlertInbox:
    """A webhook receiver on loopback standing in for the manager's tool."""

    def __init__(self, port: int) -> None:
        self.alerts: list[dict[str, Any]] = []
        alerts = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path.endswith("/SN") or self.path == "/alerts":
                    alerts.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"


async def ensure_demo_managers(connection: asyncpg.Connection, inbox: AlertInbox) -> None:
    """One demo country manager per market, whose 'tool' is the demo's webhook inbox."""
    for market in Market:
        await ensure_webhook_manager(
            connection=connection,
            market=market.value,
            name=f"Demo country manager ({market.value})",
            role="country_manager",
            webhook_url=f"{inbox.url}/{market.value}",
        )


async def run_demo(
    database_url: str, ingest_url: str, inbox_port: int, visits: int, report_dir: Path
) -> None:
    inbox = AlertInbox(inbox_port)
    connection = await asyncpg.connect(database_url)
    started = datetime.now(UTC)
    try:
        _, token = await register_device(
            connection=connection, market=Market.SN, label="demo phone"
        )
        await ensure_demo_managers(connection, inbox)
        submission = load("field_submission.dakar") | {"submission_id": str(uuid4())}
        typer.echo("field app  -> POST /v1/submissions (the contract's example visit, a fresh id)")
        async with httpx.AsyncClient(timeout=15) as http:
            response = await http.post(
                f"{ingest_url}/v1/submissions",
                json=submission,
                headers={"authorization": f"Bearer {token}"},
            )
        accepted = time.monotonic()
        typer.echo(f"ingest     <- {response.status_code} {response.text}")
        if response.status_code != 202:
            raise typer.Exit(1)

        row = None
        while row is None and time.monotonic() - accepted < 30:
            row = await connection.fetchrow(
                """SELECT submission_id, agent_market, customer_kind, msisdn_hash, topics,
                          satisfaction, verbatim, collected_at, received_at, stored_at
                   FROM terrain.submissions WHERE submission_id = $1::uuid""",
                submission["submission_id"],
            )
            if row is None:
                await asyncio.sleep(0.05)
        if row is None:
            typer.echo("the submission was not stored within 30 s: see .local/logs/", err=True)
            raise typer.Exit(1)
        typer.echo(f"PostgreSQL <- stored {time.monotonic() - accepted:.2f} s after the 202:")
        for key, value in dict(row).items():
            typer.echo(f"    {key:<14} {value}")

        while not inbox.alerts and time.monotonic() - accepted < 30:  # noqa: ASYNC110 - a thread fills it
            await asyncio.sleep(0.05)
        if not inbox.alerts:
            typer.echo("no alert within 30 s: see .local/logs/notify.log", err=True)
            raise typer.Exit(1)
        typer.echo(f"manager    <- webhook {time.monotonic() - accepted:.2f} s after the 202:")
        shown = json.dumps(inbox.alerts[0], ensure_ascii=False, indent=2)
        typer.echo("    " + shown.replace("\n", "\n    "))
        if visits:
            await field_day(database_url, ingest_url, visits, report_dir, connection, started)
    finally:
        await connection.close()
        inbox.server.shutdown()
