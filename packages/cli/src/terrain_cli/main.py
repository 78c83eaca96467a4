"""`terrain`: the operators' command line (database, topics, devices, managers, contracts,
failed submissions).

Every subcommand reads the same settings as the services (environment, ``.env``), so an
operator's shell configured for an environment talks to that environment's Kafka and
PostgreSQL, nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID

import asyncpg
import typer

from terrain_cli.failed import failed_app
from terrain_cli.segments import segments_app
from terrain_contracts.markets import Market
from terrain_runtime.db import migrate
from terrain_runtime.kafka import ensure_topics
from terrain_runtime.settings import TerrainSettings

app = typer.Typer(no_args_is_help=True, help="Terrain operators' command line.")
db_app = typer.Typer(no_args_is_help=True, help="PostgreSQL schema.")
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics of the registry.")
devices_app = typer.Typer(no_args_is_help=True, help="Field devices and their tokens.")
managers_app = typer.Typer(no_args_is_help=True, help="Country managers who receive alerts.")
contracts_app = typer.Typer(no_args_is_help=True, help="Schemas and API documents.")
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(devices_app, name="devices")
app.add_typer(managers_app, name="managers")
app.add_typer(contracts_app, name="contracts")
app.add_typer(segments_app, name="segments")
app.add_typer(failed_app, name="failed")

T = TypeVar("T")


def _run(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = TerrainSettings()
        connection = await asyncpg.connect(settings.database_url.get_secret_value())
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(main())


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (safe to run from several places at once)."""
    applied = _run(migrate)
    if applied:
        for migration in applied:
            typer.echo(f"applied {migration.version:04d}_{migration.name}")
    else:
        typer.echo("database is up to date")


@topics_app.command("create")
def topics_create() -> None:
    """Create the registry's topics that do not exist yet."""
    settings = TerrainSettings()
    created = asyncio.run(ensure_topics(settings))
    typer.echo("\n".join(f"created {name}" for name in created) or "topics are up to date")


@devices_app.command("create")
def devices_create(
    market: Annotated[Market, typer.Option(help="Market the device is registered in.")],
    label: Annotated[str, typer.Option(help="Who holds it, e.g. 'Dakar team 3'.")],
) -> None:
    """Register a field device and print its token once (only its hash is stored)."""
    from ingest.repository import create_device

    record, token = _run(lambda c: create_device(connection=c, market=market, label=label))
    typer.echo(f"device_id: {record.device_id}")
    typer.echo(f"token:     {token}")
    typer.echo("The token is shown once; store it in the device's configuration.", err=True)


@devices_app.command("list")
def devices_list(market: Annotated[Market | None, typer.Option()] = None) -> None:
    from ingest.repository import list_devices

    for device in _run(lambda c: list_devices(connection=c, market=market)):
        state = f"revoked {device.revoked_at:%Y-%m-%d %H:%M}" if device.revoked_at else "active"
        typer.echo(f"{device.device_id}  {device.market.value}  {state:<24}  {device.label}")


@devices_app.command("revoke")
def devices_revoke(device_id: UUID) -> None:
    """Revoke a device's token: ingest refuses it within seconds."""
    from ingest.repository import revoke_device

    if not _run(lambda c: revoke_device(connection=c, device_id=device_id)):
        typer.echo(f"no active device {device_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {device_id}")


@managers_app.command("add")
def managers_add(
    market: Annotated[str, typer.Option(help="Market code, or '*' for a regional director.")],
    name: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="country_manager, cx_lead, network_lead, ...")],
    email: Annotated[str | None, typer.Option()] = None,
    sms: Annotated[
        str | None, typer.Option(help="SMS number (P1 alerts); stored sealed, never in clear.")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option(help="URL that receives signed JSON alerts.")
    ] = None,
    level: Annotated[
        int, typer.Option(min=1, help="1 gets alerts; higher levels escalations.")
    ] = 1,
    language: Annotated[str, typer.Option(help="fr, en or ar.")] = "fr",
    timezone: Annotated[str, typer.Option(help="IANA timezone, e.g. Africa/Dakar.")] = "UTC",
    working_hours: Annotated[str, typer.Option(help="HH:MM-HH:MM, Monday to Friday.")] = (
        "08:00-18:00"
    ),
) -> None:
    """Add a manager who receives the alerts of a market (or escalations, level > 1)."""
    from pydantic import ValidationError

    from notify.directory import ManagerSpec

    try:
        spec = ManagerSpec(
            market=market,
            name=name,
            role=role,
            level=level,
            email=email,
            sms=sms,
            webhook=webhook,
            language=language,
            timezone=timezone,
            working_hours=working_hours,
        )
        spec.e164_sms()
    except (ValidationError, ValueError) as error:
        typer.echo(f"invalid manager: {error}", err=True)
        raise typer.Exit(2) from None
    (manager_id,) = _store_managers([spec])
    typer.echo(f"manager_id: {manager_id}")


@managers_app.command("import")
def managers_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Add every manager of a CSV file (header: market,name,role,level,email,sms,webhook,
    language,timezone,working_hours); a file with a mistake imports nothing."""
    from notify.directory import parse_csv

    try:
        specs = parse_csv(file.read_text(encoding="utf-8-sig"))
    except ValueError as error:
        typer.echo(f"{file}: {error}", err=True)
        raise typer.Exit(2) from None
    ids = _store_managers(specs)
    typer.echo(f"imported {len(ids)} managers")


def _store_managers(specs: list[Any]) -> list[UUID]:
    from notify.managers import store_managers

    sealer = TerrainSettings().sealer()

    async def store(connection: asyncpg.Connection) -> list[UUID]:
        async with connection.transaction():
            return await store_managers(connection=connection, specs=specs, sealer=sealer)

    return _run(store)


@managers_app.command("list")
def managers_list(market: Annotated[str | None, typer.Option()] = None) -> None:
    from notify.managers import list_managers

    for m in _run(lambda c: list_managers(connection=c, market=market)):
        state = "active" if m.active else "inactive"
        channels = ",".join(
            c
            for c, on in (("email", m.email), ("sms", m.has_sms), ("webhook", m.webhook_url))
            if on
        )
        typer.echo(
            f"{m.manager_id}  {m.market:<2}  L{m.level}  {state:<8}  {m.role:<16}  "
            f"{m.language}  {m.timezone:<16}  {channels:<17}  {m.name}"
        )


@managers_app.command("deactivate")
def managers_deactivate(manager_id: UUID) -> None:
    from notify.managers import deactivate_manager

    if not _run(lambda c: deactivate_manager(connection=c, manager_id=manager_id)):
        typer.echo(f"no active manager {manager_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"deactivated {manager_id}")


@app.command("demo")
def demo(
    ingest_url: Annotated[str, typer.Option(envvar="TERRAIN_INGEST_URL")] = "http://127.0.0.1:8000",
    inbox_port: Annotated[int, typer.Option(help="Port of the demo's webhook inbox.")] = 8099,
    visits: Annotated[
        int, typer.Option(help="Visits of the field day after the first one.")
    ] = 15_000,
    report_dir: Annotated[Path, typer.Option(help="Where the campaign report goes.")] = Path(
        "reports"
    ),
) -> None:
    """One visit shown hop by hop, then a whole field day, checked, and its report."""
    from terrain_cli.demo import run_demo

    settings = TerrainSettings()
    asyncio.run(
        run_demo(
            settings.database_url.get_secret_value(), ingest_url, inbox_port, visits, report_dir
        )
    )


@app.command("simulate")
def simulate_command(
    visits: Annotated[
        int, typer.Option(min=1, help="How many visits (15,000 on the real day).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Same seed, same day.")] = 20250415,
    rate: Annotated[float, typer.Option(help="Visits per second; 0 = as fast as possible.")] = 0.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Phones sending at once.")] = 32,
    ingest_url: Annotated[str, typer.Option(envvar="TERRAIN_INGEST_URL")] = "http://127.0.0.1:8000",
    campaign: Annotated[str, typer.Option()] = "mcmb-2025",
) -> None:
    """Send a realistic field day through ingest, then check every promise per market."""
    from terrain_simulator.generator import DayOptions
    from terrain_simulator.simulate import simulate

    settings = TerrainSettings()
    result = asyncio.run(
        simulate(
            database_url=settings.database_url.get_secret_value(),
            ingest_url=ingest_url,
            options=DayOptions(visits=visits, seed=seed, campaign_id=campaign),
            concurrency=concurrency,
            rate=rate,
        )
    )
    if not result.verdict.ok:
        raise typer.Exit(1)


@app.command("trace")
def trace_command(submission_id: UUID) -> None:
    """Where is submission X: accepted, raw offset, stored or failed, alerts, deliveries, trace."""
    from terrain_cli.trace import show

    if not _run(lambda c: show(c, submission_id)):
        typer.echo(
            f"nothing is known of {submission_id}: not accepted, or not consumed yet", err=True
        )
        raise typer.Exit(1)


@contracts_app.command("export")
def contracts_export(
    out: Annotated[Path, typer.Option(help="Folder of the generated documents.")] = Path(
        "docs/contracts"
    ),
    check: Annotated[bool, typer.Option(help="Fail if the files on disk are stale.")] = False,
) -> None:
    """Write the JSON Schemas, the AsyncAPI and the OpenAPI documents."""
    from terrain_cli.documents import render_all

    stale = []
    for relative, text in render_all().items():
        path = out / relative
        current = path.read_text("utf-8") if path.exists() else None
        if current != text:
            stale.append(relative)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, "utf-8")
    if check and stale:
        typer.echo("stale: " + ", ".join(stale) + " (run `terrain contracts export`)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{'checked' if check else 'wrote'} {out}")
