"""How the pipeline stores: which errors are the data's fault, isolating refused rows of a
batch, and waiting out a database that does not answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from terrain_runtime.dlq import (
    Failure,
    SourceRecord,
)
from terrain_runtime.pipeline import (
    is_refused,
    refusal_detail,
    store_isolated,
    with_db_retry,
)
from tests.unit.runtime.fakes import FlakyPool, Table, server_error

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def record(offset: int, value: bytes = b"{}", key: bytes | None = b"k") -> SourceRecord:
    return SourceRecord("raw", 0, offset, key, value, (("traceparent", TRACEPARENT),))


# -- which errors are the data's fault -----------------------------------------------------


@pytest.mark.parametrize(
    ("sqlstate", "refused"),
    [
        ("22021", True),  # U+0000 in text: invalid byte sequence
        ("22P05", True),  # \u0000 in jsonb: unsupported Unicode escape
        ("22003", True),  # numeric value out of range
        ("23505", True),  # unique violation
        ("23514", True),  # check violation
        ("42P01", False),  # undefined table: our bug, not the record's
        ("57P01", False),  # admin shutdown: transient
        ("40001", False),  # serialization failure: transient
    ],
)
def test_refused_by_sqlstate_class(sqlstate: str, refused: bool) -> None:
    assert is_refused(server_error(sqlstate, "x")) is refused


def test_a_value_asyncpg_cannot_encode_is_refused_not_waited_out() -> None:
    assert is_refused(asyncpg.exceptions._base.DataError("invalid input for query argument"))
    assert not is_refused(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert not is_refused(OSError("connection refused"))


def test_refusal_detail_names_the_column_but_never_the_value() -> None:
    error = server_error(
        "22003",
        'value "77123456" is out of range for type smallint',
        c="satisfaction",
        t="submissions",
    )
    detail = refusal_detail(error)
    assert detail.startswith("SQLSTATE 22003 NumericValueOutOfRangeError")
    assert "column=satisfaction" in detail and "table=submissions" in detail
    assert "77123456" not in detail
    text = refusal_detail(
        server_error("22021", 'invalid byte sequence for encoding "UTF8": 0x00 appelez 98765432')
    )
    assert "98765432" not in text and "\x00" not in text and "SQLSTATE 22021" in text
    copied = refusal_detail(
        server_error(
            "22P05",
            "unsupported Unicode escape sequence",
            D="\\u0000 cannot be converted to text.",
            W='JSON data, line 1: ...appelez 98765432\\u0000"}\n'
            'COPY incoming_submissions, line 2, column submission: "{...98765432...}"',
        )
    )
    assert "column=submission" in copied and "98765432" not in copied


# -- isolating the refused rows of a batch -------------------------------------------------


async def test_a_clean_batch_is_stored_in_one_attempt() -> None:
    table = Table()
    stored, failures, refused = await store_isolated([f"r{i}" for i in range(500)], table.store)
    assert len(stored) == 500 and not failures and not refused
    assert table.attempts == 1


async def test_refused_rows_are_isolated_and_the_others_stored() -> None:
    table = Table()
    rows = [f"r{i}" for i in range(500)]
    for bad in (3, 250, 499):
        rows[bad] = f"bad\x00{bad}"
    stored, _, refused = await store_isolated(rows, table.store)
    assert sorted(stored) == sorted(table.rows) == sorted(r for r in rows if "\x00" not in r)
    assert [row for row, _ in refused] == ["bad\x003", "bad\x00250", "bad\x00499"]
    assert all(is_refused(error) for _, error in refused)
    # Bisection, not one attempt per row: about 2 log2(500) attempts per culprit.
    assert table.attempts <= 3 * 2 * 9 + 1


async def test_an_error_that_is_not_the_data_propagates() -> None:
    async def broken(rows: Sequence[str]) -> tuple[list[str], list[Failure]]:
        raise server_error("42P01", 'relation "terrain.submissions" does not exist')

    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        await store_isolated(["a", "b"], broken)


# -- transient errors are waited out -------------------------------------------------------


async def test_transient_errors_are_retried_until_the_database_answers() -> None:
    pool = FlakyPool(failures=3)

    async def work(connection: Any) -> str:
        return "done"

    assert await with_db_retry(pool, work, max_delay_s=0.01, first_delay_s=0.001) == "done"
    assert pool.acquired == 4


async def test_a_refused_value_is_not_retried_even_if_asyncpg_calls_it_an_interface_error() -> None:
    pool = FlakyPool(failures=5, error=asyncpg.exceptions._base.DataError("cannot encode"))

    async def work(connection: Any) -> str:
        return "done"

    with pytest.raises(asyncpg.exceptions._base.DataError):
        await with_db_retry(pool, work, max_delay_s=0.01, first_delay_s=0.001)
    assert pool.acquired == 1
