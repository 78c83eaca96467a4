"""Field submissions that Terrain's own generator never makes, built by hypothesis.

Three kinds of document, each with what the test may expect of it:

- ``schema``: drawn from the contract's JSON Schema (docs/contracts/schemas/), every string
  of it (known fields, unknown fields and their keys) in arbitrary Unicode — control
  characters with U+0000, lone surrogates written as raw ``\\udXXX`` JSON text, combining
  marks, right-to-left text, non-characters, private use — with extreme numbers written as
  raw JSON text (``1e400``, ``-0``, huge integers), deep and wide unknown fields, and now
  and then a required field missing or of the wrong type. Valid or not: only the promises
  that hold for any input apply (2xx stored or failed with a reason, 4xx names a field).
- ``visit``: a realistic visit whose text is unusual but storable (any script, combining
  marks, right-to-left marks, emoji; a phone number and an amount in the verbatim;
  shallow unknown fields with 1e308 and -0): it must be accepted and stored.
- a resend of an accepted ``visit`` with a fresh ``sent_at`` and sometimes a newer ``app``
  block (built by the test, which knows what was accepted): the same visit, never a
  conflict.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import phonenumbers
from hypothesis import strategies as st

from terrain_contracts.markets import Market

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2] / "docs/contracts/schemas/field_submission.v1.json"
    ).read_text()
)


class Raw(str):
    """JSON text written into the body as is: a number no double holds, ``-0``."""

    __slots__ = ()


# Characters a hostile or broken client sends, each kind named by the issue it probes.
SPECIAL_CHARACTERS = (
    "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f",  # C0 and DEL
    "\x85", "\x9f",  # C1
    "\t", "\n", "\r",  # the C0 controls that text may hold
    "\ud800", "\udbff", "\udc00", "\udfff",  # lone surrogates: raw \\udXXX in the JSON
    "\u0301", "\u0308", "\u20dd", "e\u0301",  # combining marks
    "\u200f", "\u202e", "\u2067", "\u061c", "مرحبا", "שלום",  # right-to-left
    "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff", "\ufdd0",  # non-characters
    "\ue000", "\U000f0000",  # private use
    "\u200b", "\ufeff", "\u2028", "\u2029",  # invisible, separators
    "😀", "👩🏽‍🌾", "𝕏", "ﷺ", "Ⅻ", "٣",
)  # fmt: skip
EXTREME_NUMBERS = (
    Raw("1e400"), Raw("-1e400"), Raw("1e308"), Raw("-1.7976931348623157e308"), Raw("-0"),
    Raw("-0.0"), Raw("4.9e-324"), Raw("1e-400"), Raw("123456789012345678901234567890"),
    Raw("-9223372036854775809"), Raw("18446744073709551616"), Raw("0.1e1"),
)  # fmt: skip

any_character = st.one_of(
    st.characters(categories=["C", "L", "M", "N", "P", "S", "Z"]),  # with surrogates (Cs)
    st.sampled_from(SPECIAL_CHARACTERS),
)
# What PostgreSQL stores and the contract allows: every script, marks, format characters
# (right-to-left marks, zero-width joiners), emoji; no controls, surrogates, private use
# or unassigned code points (non-characters are unassigned).
storable_character = st.one_of(
    st.characters(exclude_categories=("Cc", "Cs", "Co", "Cn")),
    st.sampled_from(("\t", "\n", "é", "e\u0301", "\u200f", "\u202e", "مرحبا", "😀", "ß")),
)


# Pieces, not characters: some are several code points (a base and its mark, a word).
def hostile_text(max_size: int = 60) -> st.SearchStrategy[str]:
    return st.lists(any_character, max_size=max_size).map("".join)


def storable_text(min_size: int = 0, max_size: int = 60) -> st.SearchStrategy[str]:
    text = st.lists(storable_character, max_size=max_size).map("".join)
    # A required string is stripped of its white space before its length is checked.
    return text.map(lambda s: "V" + s) if min_size else text


def has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def encode(value: Any, *, ascii_only: bool = False) -> str:
    """JSON text of ``value``: ``Raw`` as is, lone surrogates as ``\\udXXX`` escapes (they
    have no UTF-8 form), deep nesting without the json module's recursion guard."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only or has_surrogate(value))
    if isinstance(value, dict):
        items = (f"{encode(k, ascii_only=ascii_only)}:{encode(v, ascii_only=ascii_only)}"
                 for k, v in value.items())  # fmt: skip
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v, ascii_only=ascii_only) for v in value) + "]"
    return json.dumps(value)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


_OFFSETS = st.sampled_from([timedelta(hours=h) for h in (0, 1, 2, 3, -1, 5.5, 14)])


@st.composite
def _date_time(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)))
    if draw(st.integers(0, 9)) == 0:
        return moment.isoformat()  # no offset: the contract refuses it
    aware = moment.replace(tzinfo=timezone(draw(_OFFSETS)))
    return aware.isoformat(timespec=draw(st.sampled_from(("seconds", "milliseconds"))))


def from_schema(node: dict[str, Any], text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """A strategy for the values ``node`` (a JSON Schema) describes, its free strings drawn
    from ``text``: the subset of JSON Schema the contract's schema uses."""
    node = _resolve(node)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "anyOf" in node:
        return st.one_of(*(from_schema(option, text) for option in node["anyOf"]))
    kind = node.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(node.get("minimum"), node.get("maximum"))
    if kind == "number":
        return st.floats(
            node.get("minimum"), node.get("maximum"), allow_nan=False, allow_infinity=False
        )
    if kind == "string":
        if node.get("format") == "uuid":
            return st.uuids().map(str)
        if node.get("format") == "date-time":
            return _date_time()
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True)
        low, high = node.get("minLength", 0), min(node.get("maxLength", 200), 200)
        return st.one_of(text.filter(lambda s: low <= len(s) <= high), st.text(min_size=low))
    if kind == "array":
        return st.lists(
            from_schema(node["items"], text),
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", 5), 5),
        )
    if kind == "object":
        properties = node.get("properties", {})
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, text) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, text) for k, v in properties.items() if k not in required},
        )
    raise ValueError(f"schema keyword not handled: {node}")


hostile_leaf = st.one_of(
    hostile_text(),
    st.sampled_from(EXTREME_NUMBERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
hostile_tree = st.recursive(
    hostile_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text(12), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """Unknown fields nested tens to hundreds of levels deep (objects and arrays)."""
    value: Any = draw(hostile_leaf)
    for level in range(draw(st.sampled_from((8, 40, 64, 100, 300)))):
        value = {f"n{level}": value} if level % 3 else [value]
    return value


@st.composite
def wide(draw: st.DrawFn) -> Any:
    """An unknown object or array with hundreds or thousands of members."""
    size = draw(st.sampled_from((50, 300, 1200, 3000)))
    if draw(st.booleans()):
        return list(range(size))
    return {f"k{i}": i for i in range(size)}


OBJECTS = ("agent", "customer", "feedback", "location", "app")


def _fresh_id() -> str:
    # Not drawn: hypothesis draws the same simple UUIDs again and again, and two visits
    # with one id and different content are a true conflict, not what is tested here.
    return str(uuid4())


@dataclass
class Case:
    """One document to send and what is known of it."""

    kind: str  # schema | visit | resend
    document: Any
    body: bytes
    ascii_only: bool = False
    numbers: dict[str, str] = field(default_factory=dict)  # phone number as written: market

    @property
    def submission_id(self) -> str | None:
        found = self.document.get("submission_id") if isinstance(self.document, dict) else None
        return found if isinstance(found, str) else None


def make_case(kind: str, document: Any, ascii_only: bool, **extra: Any) -> Case:
    body = encode(document, ascii_only=ascii_only).encode("utf-8")
    return Case(kind, document, body, ascii_only, **extra)


@st.composite
def schema_case(draw: st.DrawFn) -> Case:
    document: dict[str, Any] = draw(from_schema(SCHEMA, hostile_text()))
    document["submission_id"] = _fresh_id()
    # Unknown fields at the top level and inside the known objects, hostile keys included.
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(("", *OBJECTS)))
        target = document if not where else document.get(where)
        if isinstance(target, dict):
            key = draw(st.one_of(hostile_text(16), st.sampled_from(("x", "extra", "n"))))
            target[key] = draw(st.one_of(hostile_tree, deep(), wide()))
    # Now and then a known value made wrong: missing, of the wrong type, extreme.
    if draw(st.integers(0, 4)) == 0:
        path = draw(st.sampled_from(("submission_id", "collected_at", "campaign_id",
                                     "agent.market", "feedback.satisfaction", "location.lat",
                                     "feedback.topics", "customer.consent", "feedback.nps")))  # fmt: skip
        *parents, leaf = path.split(".")
        target = document
        for parent in parents:
            target = target.get(parent) if isinstance(target, dict) else None
        if isinstance(target, dict):
            if draw(st.booleans()):
                target.pop(leaf, None)
            else:
                target[leaf] = draw(hostile_leaf)
    return make_case("schema", document, draw(st.booleans()))


def _phone(rng_digits: str, market: str, style: int) -> str:
    example = phonenumbers.example_number_for_type(market, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    national = phonenumbers.national_significant_number(example)
    number = phonenumbers.parse(national[: -len(rng_digits)] + rng_digits, market)
    formats = (
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.E164,
    )
    written = phonenumbers.format_number(number, formats[style % 3])
    if style >= 3:  # as people write it: dots or dashes, 00 for +
        written = written.replace(" ", "." if style == 3 else "-").replace("+", "00")
    return written


storable_leaf = st.one_of(
    storable_text(max_size=30),
    st.integers(-(2**53), 2**53),
    st.sampled_from((1e308, -1e308, -0.0, 0.1, 5e-324)),
    st.booleans(),
    st.none(),
)
storable_tree = st.recursive(
    storable_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(string.ascii_lowercase + "_", min_size=1, max_size=10),
                        children, max_size=4),
    ),
    max_leaves=10,
)  # fmt: skip


TOPICS = st.sampled_from(_resolve({"$ref": "#/$defs/Topic"})["enum"])


@st.composite
def visit_case(draw: st.DrawFn, now: datetime) -> Case:
    market = draw(st.sampled_from([m.value for m in Market]))
    digits = draw(st.text("0123456789", min_size=5, max_size=5))
    phone = _phone(digits, market, draw(st.integers(0, 4)))
    before = draw(storable_text(max_size=300))
    after = draw(storable_text(max_size=300))
    verbatim = f"{before} — appelez-moi au {phone}, merci. J'ai payé 50 000 FCFA. {after}"
    # Saved hours ago, first sent a while after: its resends (up to an hour apart) are
    # stamped later still, and never ahead of the server's clock by much.
    collected = now - timedelta(seconds=draw(st.integers(3 * 3600, 9 * 3600)))
    sent = collected + timedelta(seconds=draw(st.integers(5, 3600)))
    document: dict[str, Any] = {
        "submission_id": _fresh_id(),
        "campaign_id": "hostile",
        "collected_at": collected.isoformat(timespec="seconds"),
        "sent_at": sent.isoformat(timespec="seconds"),
        "agent": {
            "employee_id": f"{market}-{draw(st.integers(1, 99999)):06d}",
            "function": draw(st.sampled_from(_resolve({"$ref": "#/$defs/AgentFunction"})["enum"])),
            "market": market,
        },
        "customer": {
            "kind": draw(st.sampled_from(_resolve({"$ref": "#/$defs/CustomerKind"})["enum"])),
            "consent": draw(st.booleans()),
        },
        "feedback": {
            "topics": draw(st.lists(TOPICS, min_size=1, max_size=3, unique=True)),
            "satisfaction": draw(st.integers(1, 5)),
            "verbatim": verbatim,
            "urgent": draw(st.booleans()),
        },
        "app": {"name": "field-app", "version": "2.3.1", "device_id": draw(storable_text(1, 20))},
    }
    if draw(st.booleans()):
        document["customer"]["company"] = draw(storable_text(1, 40))
    if draw(st.booleans()):
        document["location"] = {"place": draw(storable_text(1, 30))}
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(("", *OBJECTS)))
        target = document if not where else document.get(where)
        if isinstance(target, dict):
            target[f"x_{draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))}"] = draw(
                storable_tree
            )
    return make_case("visit", document, draw(st.booleans()), numbers={phone: market})


def resent(case: Case, *, seconds_later: int, newer_app: bool) -> Case:
    """``case`` as a field app's outbox sends it again."""
    document = {**case.document, "app": dict(case.document["app"])}
    first = datetime.fromisoformat(document["sent_at"])
    document["sent_at"] = (first + timedelta(seconds=seconds_later)).isoformat()
    if newer_app:
        document["app"]["version"] = "2.4.0"
    return make_case("resend", document, case.ascii_only, numbers=case.numbers)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


POISONABLE = (
    "campaign_id", "agent.employee_id", "customer.company", "feedback.verbatim",
    "feedback.language", "location.place", "app.name", "app.version", "app.device_id",
)  # fmt: skip


@st.composite
def poisoned_case(draw: st.DrawFn, now: datetime) -> Case:
    """A storable visit with one hostile thing in one place: a character in a known or an
    unknown field or key, an extreme number, a deep or wide unknown field. What the stage
    after the edge would choke on hides among valid content."""
    visit: Case = draw(visit_case(now))
    document = visit.document
    poison = draw(st.one_of(st.sampled_from(SPECIAL_CHARACTERS), any_character))
    where = draw(st.sampled_from(("known", "unknown value", "unknown key", "nested", "number",
                                  "deep", "wide")))  # fmt: skip
    if where == "known":
        *parents, leaf = draw(st.sampled_from(POISONABLE)).split(".")
        target = document
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = f"{target.get(leaf) or 'x'}{poison}"
    elif where == "unknown value":
        document["x_note"] = f"note {poison} end"
    elif where == "unknown key":
        parent = draw(st.sampled_from(OBJECTS))
        document.setdefault(parent, {})[f"x{poison}key"] = "value"
    elif where == "nested":
        document["x_extra"] = {"a": [{"b": f"{poison}"}]}
    elif where == "number":
        document["x_measure"] = draw(st.sampled_from(EXTREME_NUMBERS))
    elif where == "deep":
        document["x_deep"] = draw(deep())
    else:
        document["x_wide"] = draw(wide())
    return make_case("poisoned", document, draw(st.booleans()), numbers=visit.numbers)
