"""`terrain segments import FILE.csv`: CRM segments into PostgreSQL, keyed by pseudonym.

The file is read as a stream and written in chunks (each chunk one COPY and one upsert in
its own transaction), so a 5-million-line extract needs one chunk in memory, not the file.
A clear ``msisdn`` column is normalised and hashed with the same keyed pseudonym as ingest
as it is read: the number never reaches the database, the logs or this command's output
(a bad line is reported by its line number and column only). Importing a file again
changes nothing.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import asyncpg
import typer

from enrich.repository import import_segments
from enrich.segments import InvalidSegmentRow, SegmentRecord, parse_segment_row
from terrain_contracts.markets import Market
from terrain_runtime.settings import TerrainSettings

segments_app = typer.Typer(no_args_is_help=True, help="CRM customer segments.")

REQUIRED = {"segment", "valid_from"}
CHUNK_ROWS = 20_000
# phonenumbers' "unknown region": only numbers with their country code are accepted.
_NO_REGION = "ZZ"


def read_segments(
    path: Path, *, settings: TerrainSettings, default_region: str, errors: list[str]
) -> Iterator[list[SegmentRecord]]:
    """Chunks of parsed records; bad lines are described in ``errors`` and skipped."""
    pseudonymiser = settings.pseudonymiser()
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        columns = set(reader.fieldnames or ())
        missing = REQUIRED - columns
        if missing or not columns & {"msisdn", "msisdn_hash"}:
            needed = sorted(missing) or ["msisdn or msisdn_hash"]
            raise typer.BadParameter(f"{path}: missing column(s) {', '.join(needed)}")
        chunk: list[SegmentRecord] = []
        for row in reader:
            try:
                chunk.append(parse_segment_row(row, pseudonymiser, default_region))
            except InvalidSegmentRow as error:
                errors.append(f"line {reader.line_num}: {error}")
                continue
            if len(chunk) >= CHUNK_ROWS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


@segments_app.command("import")
def segments_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    market: Annotated[
        Market | None,
        typer.Option(help="Country of numbers written without a country code."),
    ] = None,
    max_errors: Annotated[
        int, typer.Option(help="Stop (exit 1) when more lines than this are invalid.")
    ] = 1000,
) -> None:
    """Import a CRM extract: columns msisdn or msisdn_hash, segment, value_tier, plan,
    tenure_months, valid_from (ISO date). Idempotent; streams any size of file."""
    settings = TerrainSettings()
    errors: list[str] = []

    async def run() -> tuple[int, int]:
        connection = await asyncpg.connect(settings.database_url.get_secret_value())
        read = changed = 0
        try:
            for chunk in read_segments(
                file,
                settings=settings,
                default_region=market.value if market else _NO_REGION,
                errors=errors,
            ):
                read += len(chunk)
                changed += await import_segments(connection=connection, records=chunk)
                if len(errors) > max_errors:
                    break
        finally:
            await connection.close()
        return read, changed

    read, changed = asyncio.run(run())
    for message in errors[:20]:
        typer.echo(message, err=True)
    typer.echo(f"{read} rows read, {changed} new or changed, {len(errors)} invalid")
    if len(errors) > max_errors:
        typer.echo(f"stopped: more than {max_errors} invalid lines", err=True)
        raise typer.Exit(1)
