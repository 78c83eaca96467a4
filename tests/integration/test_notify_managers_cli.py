"""`terrain managers ...` against the real database: add with an SMS number (stored sealed,
never in clear), import a CSV (all or nothing), list, deactivate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from terrain_cli.main import app
from terrain_runtime.settings import TerrainSettings


@pytest.fixture
def cli_env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "TERRAIN_ENVIRONMENT": "test"}


async def test_managers_add_import_list_deactivate(
    cli_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    def invoke(*args: str) -> Result:
        # In a thread: the CLI runs its own event loop, this test's is already running.
        return CliRunner().invoke(app, list(args), env=cli_env)

    added = await asyncio.to_thread(
        invoke,
        "managers", "add", "--market", "sn", "--name", "Fatou Diop",
        "--role", "country_manager", "--email", "fatou@example.sn",
        "--sms", "77 123 45 67", "--level", "1", "--language", "fr",
        "--timezone", "Africa/Dakar",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    manager_id = UUID(added.output.split("manager_id:")[1].strip())

    good = tmp_path / "managers.csv"
    good.write_text(
        "market,name,role,level,email,sms,webhook,language,timezone,working_hours\n"
        "ML,Oumar,cx_lead,1,oumar@example.ml,,,fr,Africa/Bamako,07:30-16:30\n"
        "*,Karim,regional_director,3,,+212612345678,,ar,Africa/Casablanca,\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("market,name,role,language\nGN,Ok,cx_lead,fr\nGN,Bad,cx_lead,de\n")
    assert (await asyncio.to_thread(invoke, "managers", "import", str(good))).exit_code == 0
    refused = await asyncio.to_thread(invoke, "managers", "import", str(bad))
    assert refused.exit_code == 2 and "line 3: language" in refused.output

    listed = await asyncio.to_thread(invoke, "managers", "list", "--market", "SN")
    assert "Fatou Diop" in listed.output and "email,sms" in listed.output
    assert "Oumar" not in listed.output
    gone = await asyncio.to_thread(invoke, "managers", "deactivate", str(manager_id))
    assert gone.exit_code == 0

    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT sms_sealed, timezone, active FROM terrain.managers WHERE manager_id = $1",
            manager_id,
        )
        names = await connection.fetch(
            "SELECT name FROM terrain.managers WHERE name IN ('Ok', 'Bad')"
        )
        # Leave no active manager behind: later tests count a market's managers.
        await connection.execute(
            "UPDATE terrain.managers SET active = false WHERE name IN ('Oumar', 'Karim')"
        )
        karim = await connection.fetchrow(
            "SELECT manager_id, sms_sealed FROM terrain.managers WHERE name = 'Karim' AND level = 3"
        )
    finally:
        await connection.close()
    assert row is not None and karim is not None
    assert "221771234567" not in row["sms_sealed"] and not row["active"]
    assert row["timezone"] == "Africa/Dakar"
    sealer = TerrainSettings(environment="test").sealer()
    assert sealer.open(row["sms_sealed"], context=manager_id.bytes) == "+221771234567"
    assert sealer.open(karim["sms_sealed"], context=karim["manager_id"].bytes) == "+212612345678"
    assert names == []  # the file with a mistake imported nothing
