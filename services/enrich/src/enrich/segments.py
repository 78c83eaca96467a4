"""Customer segments: the CRM's segment valid when a visit was collected, or a fallback.

The reference data is imported from CRM extracts into ``terrain.customer_segments`` (see
``terrain segments import``), keyed by the same keyed pseudonym as the submissions. A
customer's history is kept: looking up "as of ``collected_at``" gives a replay months later
the same answer as the first run.

The enrich stage (stages.py) fetches the histories of a whole batch in one query, through
``SegmentCache`` so that regulars are not fetched again and again; the functions here are
pure.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from terrain_contracts.messages import CustomerSegment, PseudonymisedCustomer
from terrain_contracts.submission import CustomerKind
from terrain_runtime.privacy import InvalidPhoneNumber, Pseudonymiser, normalise_msisdn


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """One CRM fact: this customer is in this segment from ``valid_from`` on."""

    msisdn_hash: str
    valid_from: datetime
    segment: str
    value_tier: str | None = None
    plan: str | None = None
    tenure_months: int | None = None


def segment_as_of(history: Sequence[SegmentRecord], when: datetime) -> SegmentRecord | None:
    """The record in force at ``when``: the latest ``valid_from`` not after it."""
    best: SegmentRecord | None = None
    for record in history:
        if record.valid_from <= when and (best is None or record.valid_from > best.valid_from):
            best = record
    return best


# Enterprise names say something of their size and sector when the CRM does not know them.
_PUBLIC = re.compile(
    r"\b(minist\w*|gouvernement|government|mairie|commune|municipal\w*|prefecture|ambassade|"
    r"embassy|universit\w*|hopital|hospital|ecole|school|lycee|college|ong|ngo|unicef|onu|"
    r"oms|croix[- ]rouge|red cross|police|gendarmerie|armee|army|douane\w*)\b"
)
_LARGE = re.compile(
    r"\b(s\.?a\.?|plc|group\w*|groupe|holding\w*|bank|banque|banco|bancaire|assurance\w*|"
    r"insurance|mining|mines|minier\w*|petrol\w*|oil|telecom\w*|airlines?|industries|"
    r"corporation|corp|international)\b"
)
_SMALL = re.compile(
    r"\b(sarl|sarlu|suarl|ets|etablissements?|ltd|lda|llc|boutique|shop|quincaillerie|"
    r"pharmacie|pharmacy|restaurant|maquis|garage|salon|atelier|cabinet|epicerie|store|"
    r"alimentation|kiosque|cyber|multiservices?)\b"
)


def fallback_segment(kind: CustomerKind, company: str | None) -> CustomerSegment:
    """Without a CRM record: the agent's customer kind, refined by an enterprise's name."""
    if kind is CustomerKind.ENTERPRISE and company:
        name = company.casefold()
        for pattern, segment in (
            (_PUBLIC, "enterprise_public"),
            (_LARGE, "enterprise_large"),
            (_SMALL, "enterprise_sme"),
        ):
            if pattern.search(name):
                return CustomerSegment(segment=segment, source="company_name")
    return CustomerSegment(segment=kind.value, source="customer_kind")


def customer_segment(
    customer: PseudonymisedCustomer,
    collected_at: datetime,
    histories: Mapping[str, Sequence[SegmentRecord]],
) -> CustomerSegment:
    if customer.msisdn_hash:
        record = segment_as_of(histories.get(customer.msisdn_hash, ()), collected_at)
        if record is not None:
            return CustomerSegment(
                segment=record.segment,
                value_tier=record.value_tier,
                plan=record.plan,
                tenure_months=record.tenure_months,
                source="crm",
            )
    return fallback_segment(customer.kind, customer.company)


class SegmentCache:
    """Recently fetched histories by pseudonym (an empty one too: "not in the CRM").

    Bounded (least recently used goes first) and short-lived, so a new import is seen
    within ``ttl_s`` without any signal between the CLI and the running service.
    """

    def __init__(
        self,
        *,
        max_entries: int = 200_000,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, tuple[SegmentRecord, ...]]] = OrderedDict()
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._now = clock

    def missing(self, hashes: Iterable[str]) -> list[str]:
        now = self._now()
        absent: list[str] = []
        for key in dict.fromkeys(hashes):
            entry = self._entries.get(key)
            if entry is None or now - entry[0] > self.ttl_s:
                absent.append(key)
        return absent

    def put(self, fetched: Mapping[str, Sequence[SegmentRecord]], asked: Iterable[str]) -> None:
        now = self._now()
        for key in asked:
            self._entries[key] = (now, tuple(fetched.get(key, ())))
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def histories(self, hashes: Iterable[str]) -> dict[str, tuple[SegmentRecord, ...]]:
        found: dict[str, tuple[SegmentRecord, ...]] = {}
        for key in hashes:
            entry = self._entries.get(key)
            if entry is not None:
                found[key] = entry[1]
                self._entries.move_to_end(key)
        return found


class InvalidSegmentRow(ValueError):
    """A CRM line that cannot be imported (the message names the column, never the number)."""


def parse_segment_row(
    row: Mapping[str, str | None], pseudonymiser: Pseudonymiser, default_region: str
) -> SegmentRecord:
    """One CSV line -> a record keyed by pseudonym; a clear number is hashed right here."""

    def text(column: str) -> str | None:
        value = (row.get(column) or "").strip()
        return value or None

    msisdn_hash = text("msisdn_hash")
    clear = text("msisdn")
    if clear is not None:
        try:
            msisdn_hash = pseudonymiser.pseudonym(normalise_msisdn(clear, default_region))
        except InvalidPhoneNumber as error:
            raise InvalidSegmentRow(f"msisdn {error}") from None
    if msisdn_hash is None:
        raise InvalidSegmentRow("msisdn or msisdn_hash is required")
    segment = text("segment")
    if segment is None:
        raise InvalidSegmentRow("segment is required")
    tenure = text("tenure_months")
    try:
        tenure_months = int(tenure) if tenure is not None else None
    except ValueError:
        raise InvalidSegmentRow(f"tenure_months is not a whole number: {tenure!r}") from None
    if tenure_months is not None and tenure_months < 0:
        raise InvalidSegmentRow("tenure_months is negative")
    return SegmentRecord(
        msisdn_hash=msisdn_hash,
        valid_from=_parse_valid_from(text("valid_from")),
        segment=segment,
        value_tier=text("value_tier"),
        plan=text("plan"),
        tenure_months=tenure_months,
    )


def _parse_valid_from(value: str | None) -> datetime:
    if value is None:
        raise InvalidSegmentRow("valid_from is required")
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSegmentRow(f"valid_from is not an ISO date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
