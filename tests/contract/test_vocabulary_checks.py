"""The database speaks the shared vocabulary: every enumerated text column of a migrated
database accepts exactly the values of its enum in terrain_contracts.vocabulary, read from
the constraints PostgreSQL holds (pg_constraint), not from the migration files."""

from __future__ import annotations

import re
from enum import StrEnum

import asyncpg
import pytest

from terrain_contracts.vocabulary import (
    AlertStatus,
    FailureReason,
    Severity,
    Signal,
    UnroutableReason,
)
from terrain_testkit.database import throwaway_database

pytestmark = pytest.mark.integration

# (table, column) -> the enum its CHECK constraint must spell out.
VOCABULARY_COLUMNS: dict[tuple[str, str], type[StrEnum]] = {
    ("terrain.alerts", "status"): AlertStatus,
    ("terrain.alerts", "severity"): Severity,
    ("terrain.unroutable_alerts", "reason"): UnroutableReason,
    ("terrain.unroutable_alerts", "severity"): Severity,
    ("terrain.submissions", "signals"): Signal,
    ("terrain.failed_submissions", "reason"): FailureReason,
}

# pg_get_constraintdef spells a list check as `CHECK ((status = ANY (ARRAY['a'::text, ...])))`
# and an array check as `CHECK ((signals <@ ARRAY['a'::text, ...]))`.
_LIST_CHECK = re.compile(r"^CHECK \(\(\(?(\w+)\)?(?:::text)? (?:= ANY \(|<@ )\(?ARRAY\[(.*)\]")
_LITERAL = re.compile(r"'((?:[^']|'')*)'::text")


@pytest.fixture(scope="module")
async def enumerated_checks() -> dict[tuple[str, str], set[str]]:
    """(table, column) -> the values its CHECK constraint accepts, for every check of the
    terrain schema that lists text values."""
    async with throwaway_database("terrain_vocabulary") as url:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                """SELECT 'terrain.' || t.relname AS relation, pg_get_constraintdef(c.oid) AS body
                   FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
                   WHERE c.contype = 'c' AND c.connamespace = 'terrain'::regnamespace"""
            )
        finally:
            await connection.close()
    checks: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        found = _LIST_CHECK.match(row["body"])
        if found is None:
            continue  # a range or a pattern (level >= 1, working hours), not a list of words
        column, values = found.groups()
        assert (row["relation"], column) not in checks, f"two lists on {column}"
        checks[(row["relation"], column)] = {
            value.replace("''", "'") for value in _LITERAL.findall(values)
        }
    return checks


@pytest.mark.parametrize(
    ("column", "vocabulary"), list(VOCABULARY_COLUMNS.items()), ids=lambda c: str(c)
)
async def test_each_enumerated_column_accepts_exactly_its_vocabulary(
    enumerated_checks: dict[tuple[str, str], set[str]],
    column: tuple[str, str],
    vocabulary: type[StrEnum],
) -> None:
    assert column in enumerated_checks, f"{column} has no CHECK listing {vocabulary.__name__}"
    assert enumerated_checks[column] == {member.value for member in vocabulary}


async def test_every_list_of_words_in_the_schema_is_a_vocabulary(
    enumerated_checks: dict[tuple[str, str], set[str]],
) -> None:
    assert set(enumerated_checks) == set(VOCABULARY_COLUMNS)
