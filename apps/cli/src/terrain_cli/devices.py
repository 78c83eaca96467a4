"""`terrain devices`: the field devices allowed to send submissions, and their tokens.

`register_device` is the one way onto ingest's device table from outside ingest: the
command below uses it, and so does the simulator, which sets up its phones as an operator
would before it talks to ingest over HTTP like any field app.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer

from ingest.repository import create_device, list_devices, revoke_device
from terrain_cli.connection import run_with_connection
from terrain_contracts.markets import Market
from terrain_runtime.db import Connection

devices_app = typer.Typer(no_args_is_help=True, help="Field devices and their tokens.")


async def register_device(
    *, connection: Connection, market: Market, label: str
) -> tuple[UUID, str]:
    """Register a field device of ``market``; its id and its token, returned this once
    (only the token's hash is stored)."""
    record, token = await create_device(connection=connection, market=market, label=label)
    return record.device_id, token


@devices_app.command("create")
def devices_create(
    market: Annotated[Market, typer.Option(help="Market the device is registered in.")],
    label: Annotated[str, typer.Option(help="Who holds it, e.g. 'Dakar team 3'.")],
) -> None:
    """Register a field device and print its token once (only its hash is stored)."""
    device_id, token = run_with_connection(
        lambda c: register_device(connection=c, market=market, label=label)
    )
    typer.echo(f"device_id: {device_id}")
    typer.echo(f"token:     {token}")
    typer.echo("The token is shown once; store it in the device's configuration.", err=True)


@devices_app.command("list")
def devices_list(market: Annotated[Market | None, typer.Option()] = None) -> None:
    for device in run_with_connection(lambda c: list_devices(connection=c, market=market)):
        state = f"revoked {device.revoked_at:%Y-%m-%d %H:%M}" if device.revoked_at else "active"
        typer.echo(f"{device.device_id}  {device.market.value}  {state:<24}  {device.label}")


@devices_app.command("revoke")
def devices_revoke(device_id: UUID) -> None:
    """Revoke a device's token: ingest refuses it within seconds."""
    if not run_with_connection(lambda c: revoke_device(connection=c, device_id=device_id)):
        typer.echo(f"no active device {device_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {device_id}")
