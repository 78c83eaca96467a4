"""`terrain managers`: the people who receive alerts, their channels and escalation levels.

`ensure_webhook_manager` is how a tool outside notify gives a market someone to alert (the
demo's inbox stands in for a manager's system); the commands below are the operator's way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from pydantic import ValidationError

from notify.directory import ManagerSpec, parse_csv
from notify.managers import add_manager, deactivate_manager, list_managers, store_managers
from terrain_cli.connection import run_with_connection
from terrain_runtime.db import Connection
from terrain_runtime.settings import TerrainSettings

managers_app = typer.Typer(no_args_is_help=True, help="Country managers who receive alerts.")


async def ensure_webhook_manager(
    *, connection: Connection, market: str, name: str, role: str, webhook_url: str
) -> UUID:
    """The active manager of ``market`` whose alerts go to ``webhook_url``, added when
    there is none: setting up twice does not make two managers, nor two alerts per visit."""
    for manager in await list_managers(connection=connection, market=market):
        if manager.active and manager.webhook_url == webhook_url:
            return manager.manager_id
    return await add_manager(
        connection=connection, market=market, name=name, role=role, webhook_url=webhook_url
    )


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
    try:
        specs = parse_csv(file.read_text(encoding="utf-8-sig"))
    except ValueError as error:
        typer.echo(f"{file}: {error}", err=True)
        raise typer.Exit(2) from None
    ids = _store_managers(specs)
    typer.echo(f"imported {len(ids)} managers")


def _store_managers(specs: list[ManagerSpec]) -> list[UUID]:
    sealer = TerrainSettings().sealer()

    async def store(connection: Connection) -> list[UUID]:
        async with connection.transaction():
            return await store_managers(connection=connection, specs=specs, sealer=sealer)

    return run_with_connection(store)


@managers_app.command("list")
def managers_list(market: Annotated[str | None, typer.Option()] = None) -> None:
    for m in run_with_connection(lambda c: list_managers(connection=c, market=market)):
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
    if not run_with_connection(lambda c: deactivate_manager(connection=c, manager_id=manager_id)):
        typer.echo(f"no active manager {manager_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"deactivated {manager_id}")
