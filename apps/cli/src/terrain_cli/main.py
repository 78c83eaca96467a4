"""`terrain`: the operators' command line (database, topics, devices, managers, contracts,
failed submissions).

Every subcommand reads the same settings as the services (environment, ``.env``), so an
operator's shell configured for an environment talks to that environment's Kafka and
PostgreSQL, nothing else.

Apps that build on the CLI add their commands through the ``terrain.commands`` entry point
(the simulator's ``simulate`` and ``demo``): they set themselves up with the CLI's
functions, so the CLI finds them by name instead of importing them, and imports between
the two apps point one way only.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer

from terrain_cli.connection import run_with_connection
from terrain_cli.devices import devices_app
from terrain_cli.failed import failed_app
from terrain_cli.managers import managers_app
from terrain_cli.segments import segments_app
from terrain_runtime.db import migrate
from terrain_runtime.kafka import ensure_topics
from terrain_runtime.settings import TerrainSettings

app = typer.Typer(no_args_is_help=True, help="Terrain operators' command line.")
db_app = typer.Typer(no_args_is_help=True, help="PostgreSQL schema.")
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics of the registry.")
contracts_app = typer.Typer(no_args_is_help=True, help="Schemas and API documents.")
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(devices_app, name="devices")
app.add_typer(managers_app, name="managers")
app.add_typer(contracts_app, name="contracts")
app.add_typer(segments_app, name="segments")
app.add_typer(failed_app, name="failed")
for command in entry_points(group="terrain.commands"):
    app.command(command.name)(command.load())


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (safe to run from several places at once)."""
    applied = run_with_connection(migrate)
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


@app.command("trace")
def trace_command(submission_id: UUID) -> None:
    """Where is submission X: accepted, raw offset, stored or failed, alerts, deliveries, trace."""
    from terrain_cli.trace import show

    if not run_with_connection(lambda c: show(c, submission_id)):
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
