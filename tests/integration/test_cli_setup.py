"""How a market gets its phones and someone to alert, against the real database: `terrain
devices create/list/revoke`, and the CLI's functions the simulator sets itself up with."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
from typer.testing import CliRunner, Result

from ingest.repository import find_active_device
from terrain_cli.devices import register_device
from terrain_cli.main import app
from terrain_cli.managers import ensure_webhook_manager
from terrain_contracts.markets import Market


async def test_a_device_created_on_the_command_line_is_let_in_until_revoked(
    database_url: str,
) -> None:
    def invoke(*args: str) -> Result:
        # In a thread: the CLI runs its own event loop, this test's is already running.
        env = {"DATABASE_URL": database_url, "TERRAIN_ENVIRONMENT": "test"}
        return CliRunner().invoke(app, list(args), env=env)

    created = await asyncio.to_thread(
        invoke, "devices", "create", "--market", "ML", "--label", "Bamako team 7"
    )
    assert created.exit_code == 0, created.output
    device_id = UUID(created.stdout.split("device_id:")[1].split()[0])
    token = created.stdout.split("token:")[1].split()[0]
    listed = await asyncio.to_thread(invoke, "devices", "list", "--market", "ML")
    assert f"{device_id}  ML  active" in listed.stdout and "Bamako team 7" in listed.stdout

    connection = await asyncpg.connect(database_url)
    try:
        device = await find_active_device(connection=connection, token=token)
        assert device is not None and device.device_id == device_id
        revoked = await asyncio.to_thread(invoke, "devices", "revoke", str(device_id))
        assert revoked.exit_code == 0, revoked.output
        assert await find_active_device(connection=connection, token=token) is None
        again = await asyncio.to_thread(invoke, "devices", "revoke", str(device_id))
        assert again.exit_code == 1
    finally:
        await connection.close()


async def test_the_simulators_setup_makes_a_working_device_and_one_manager_per_inbox(
    database_url: str,
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        device_id, token = await register_device(
            connection=connection, market=Market.GN, label="simulator"
        )
        device = await find_active_device(connection=connection, token=token)
        assert device is not None and device.device_id == device_id

        url = "http://127.0.0.1:1/alerts/GN"
        ids = [
            await ensure_webhook_manager(
                connection=connection,
                market="GN",
                name="Demo country manager (GN)",
                role="country_manager",
                webhook_url=url,
            )
            for _ in range(2)
        ]
        count = await connection.fetchval(
            "SELECT count(*) FROM terrain.managers WHERE webhook_url = $1 AND active", url
        )
        # Leave no active manager behind: other tests count a market's managers.
        await connection.execute(
            "UPDATE terrain.managers SET active = false WHERE webhook_url = $1", url
        )
    finally:
        await connection.close()
    assert ids[0] == ids[1] and count == 1
