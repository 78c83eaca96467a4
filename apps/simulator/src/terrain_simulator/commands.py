"""`terrain simulate` and `terrain demo`: the simulator's commands on the operators' CLI.

The CLI lists them through the ``terrain.commands`` entry point of this package (see its
pyproject.toml), so they appear under `terrain` without the CLI importing the simulator.
The work is imported when a command runs: `terrain --help` stays quick.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from terrain_runtime.settings import TerrainSettings


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
    from terrain_simulator.demo import run_demo

    settings = TerrainSettings()
    asyncio.run(
        run_demo(
            settings.database_url.get_secret_value(), ingest_url, inbox_port, visits, report_dir
        )
    )


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
