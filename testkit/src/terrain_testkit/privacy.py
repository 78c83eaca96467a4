"""Privacy scans: which phone numbers and email addresses that the field sent appear in
clear in a text, and every text a scan reads (the database's columns, the topics' records)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import asyncpg
import phonenumbers

from terrain_testkit.topics import list_topics, read_topic

# What is not a phone number but is made of digits: timestamps, UUIDs, hex digests
# (pseudonyms), base64 (sealed numbers). Removed before looking for numbers in clear, so
# the privacy scans do not match a number by chance inside them.
_NOT_A_NUMBER = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)?"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|[A-Za-z0-9+/]{24,}={0,2}"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def national_numbers(msisdns: dict[str, str]) -> set[str]:
    """National significant numbers of {msisdn as sent: market}: what must never show."""
    found = set()
    for raw, market in msisdns.items():
        try:
            number = phonenumbers.parse(raw, market)
        except phonenumbers.NumberParseException:
            continue
        national = phonenumbers.national_significant_number(number)
        if len(national) >= 8:
            found.add(national)
    return found


def phone_numbers_in(text: str, numbers: set[str]) -> set[str]:
    """Which of ``numbers`` appear in ``text`` in clear, whatever the spacing or prefix."""
    cleaned = _NOT_A_NUMBER.sub(" ", text)
    cleaned = re.sub(r"(?<=\d)[ .\-()]+(?=\d)", "", cleaned)
    runs = re.findall(r"\d{8,}", cleaned)
    return {n for n in numbers if any(n in run for run in runs)}


def emails_in(text: str, emails: set[str]) -> set[str]:
    """Which of ``emails`` appear in ``text`` in clear (case-insensitive)."""
    present = {e.lower() for e in _EMAIL.findall(text)}
    return {e for e in emails if e.lower() in present}


async def database_text(
    database_url: str, schemas: Sequence[str] = ("terrain", "analytics")
) -> dict[str, str]:
    """Every text, json, array and bytea column of every table and view of ``schemas``
    (found in information_schema, so a new table or column is scanned without anyone
    listing it), as one text per column: what a privacy scan reads."""
    connection = await asyncpg.connect(database_url)
    try:
        columns = await connection.fetch(
            """SELECT table_schema, table_name, column_name, data_type
               FROM information_schema.columns
               WHERE table_schema = ANY($1::text[])
                 AND (data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',
                                    'bytea', 'ARRAY', 'USER-DEFINED'))
               ORDER BY 1, 2, 3""",
            list(schemas),
        )
        found: dict[str, str] = {}
        for column in columns:
            # Names read from information_schema, quoted: not input.
            table = f'"{column["table_schema"]}"."{column["table_name"]}"'
            name = f'"{column["column_name"]}"'
            if column["data_type"] == "bytea":
                values = [
                    (r[0] or b"").decode("utf-8", "replace")
                    for r in await connection.fetch(f"SELECT {name} FROM {table}")  # noqa: S608
                ]
            else:
                query = f"SELECT {name}::text FROM {table}"  # noqa: S608
                values = [r[0] or "" for r in await connection.fetch(query)]
            found[f"{table}.{name}"] = "\n".join(values)
        return found
    finally:
        await connection.close()


async def topics_text(namespace: str) -> dict[str, str]:
    """Every record of every topic of ``namespace``, from the beginning: keys, values and
    headers, one text per topic."""
    found: dict[str, str] = {}
    for name in await list_topics(namespace):
        records = await read_topic(name, expect=10**9, timeout_s=3)
        parts = []
        for record in records:
            parts.append((record.key or b"").decode("utf-8", "replace"))
            parts.append((record.value or b"").decode("utf-8", "replace"))
            for header, value in record.headers or ():
                parts.append(f"{header}={(value or b'').decode('utf-8', 'replace')}")
        found[name] = "\n".join(parts)
    return found
