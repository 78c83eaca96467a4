"""The managers' directory as operators write it (CLI options or a CSV file), validated
before anything is stored (managers.py stores it, sealing SMS numbers like customers')."""

from __future__ import annotations

import csv
import io
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from terrain_contracts.markets import Market
from terrain_runtime.privacy import normalise_msisdn

CSV_COLUMNS = (
    "market",
    "name",
    "role",
    "level",
    "email",
    "sms",
    "webhook",
    "language",
    "timezone",
    "working_hours",
)


class ManagerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    market: str
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(pattern=r"^[a-z][a-z_]{1,40}$")
    level: int = Field(default=1, ge=1, le=9)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    sms: str | None = None
    webhook: str | None = Field(default=None, pattern=r"^https?://\S+$")
    language: Literal["fr", "en", "ar"] = "fr"
    timezone: str = "UTC"
    working_hours: str = Field(default="08:00-18:00", pattern=r"^[0-2]\d:[0-5]\d-[0-2]\d:[0-5]\d$")

    @field_validator("market")
    @classmethod
    def _market(cls, value: str) -> str:
        value = value.upper()
        if value != "*" and value not in Market.__members__:
            raise ValueError("must be one of the 17 market codes, or '*' for regional directors")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA timezone (e.g. Africa/Dakar)") from None
        return value

    def e164_sms(self) -> str | None:
        """The SMS number in E.164; a director ('*') must give the country code."""
        if not self.sms:
            return None
        return normalise_msisdn(self.sms, "ZZ" if self.market == "*" else self.market)


def parse_csv(text: str) -> list[ManagerSpec]:
    """Managers of a CSV file with a header row (columns: CSV_COLUMNS; empty cells are unset).

    Raises ValueError naming the line and field of the first problem: nothing is imported
    from a file with a mistake in it.
    """
    reader = csv.DictReader(io.StringIO(text))
    unknown = set(reader.fieldnames or []) - set(CSV_COLUMNS)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}; expected {', '.join(CSV_COLUMNS)}")
    specs = []
    for line, row in enumerate(reader, start=2):
        values = {k: v for k, v in row.items() if k and v not in (None, "")}
        try:
            spec = ManagerSpec.model_validate(values)
            spec.e164_sms()
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            raise ValueError(f"line {line}: {field}: {first['msg']}") from None
        except ValueError as error:
            raise ValueError(f"line {line}: sms: {error}") from None
        specs.append(spec)
    return specs
