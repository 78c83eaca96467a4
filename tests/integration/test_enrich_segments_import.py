"""`terrain segments import` against the real database: numbers hashed on read (never
stored in clear), the same file twice changes nothing, the file is read in chunks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from terrain_cli import segments
from terrain_cli.main import app
from terrain_runtime.settings import TerrainSettings
from terrain_testkit.database import fetchval

HEADER = "msisdn,msisdn_hash,segment,value_tier,plan,tenure_months,valid_from\n"


def _extract(path: Path, lines: int) -> list[str]:
    numbers = [f"77 {n // 10000:03d} {n % 10000 // 100:02d} {n % 100:02d}" for n in range(lines)]
    body = "".join(
        f"{number},,youth,gold,pass_jeune,{n % 40},2025-01-01\n" for n, number in enumerate(numbers)
    )
    path.write_text(HEADER + body + ",,no_customer,,,,2025-01-01\n", encoding="utf-8")
    return numbers


def test_import_hashes_numbers_and_is_idempotent(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "crm.csv"
    numbers = _extract(path, 120)
    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "TERRAIN_ENVIRONMENT": "test"}
    first = runner.invoke(app, ["segments", "import", str(path), "--market", "SN"], env=env)
    assert first.exit_code == 0, first.output
    assert "120 rows read, 120 new or changed, 1 invalid" in first.output
    assert "line 122: msisdn or msisdn_hash is required" in first.output
    again = runner.invoke(app, ["segments", "import", str(path), "--market", "SN"], env=env)
    assert "120 rows read, 0 new or changed, 1 invalid" in again.output
    for output in (first.output, again.output):
        assert not any(number in output for number in numbers)

    expected = TerrainSettings(environment="test").pseudonymiser().pseudonym("+221770000105")
    stored = asyncio.run(
        fetchval(
            database_url,
            "SELECT segment FROM terrain.customer_segments WHERE msisdn_hash = $1",
            expected,
        )
    )
    assert stored == "youth"
    clear = asyncio.run(
        fetchval(
            database_url,
            "SELECT count(*) FROM terrain.customer_segments WHERE msisdn_hash !~ '^k1:[0-9a-f]{64}$'",
        )
    )
    assert clear == 0


def test_the_file_is_read_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "CHUNK_ROWS", 25)
    path = tmp_path / "crm.csv"
    _extract(path, 60)
    errors: list[str] = []
    chunks = segments.read_segments(
        path, settings=TerrainSettings(environment="test"), default_region="SN", errors=errors
    )
    assert [len(chunk) for chunk in chunks] == [25, 25, 10]
    assert errors == ["line 62: msisdn or msisdn_hash is required"]
