"""What the pipeline cannot carry, refused at the edge with the path of each problem.

Every string of a submission (known fields, unknown fields and object keys, at any depth)
is screened before the contract is checked, because a value accepted here is a value
PostgreSQL, Kafka's JSON and every later stage must hold:

- C0 control characters other than tab, LF and CR are refused: U+0000 cannot be stored in
  PostgreSQL ``text`` or ``jsonb`` at all (one such visit halted storage for every market),
  and the others are no text a person types.
- Lone surrogates (a JSON ``\\ud800`` escape without its pair, which Python's parser takes
  into a ``str``) are refused: they are not Unicode, cannot be encoded as UTF-8, and broke
  the serialisation of the Kafka record.
- Non-characters (U+FFFE, U+FFFF, U+FDD0..U+FDEF, the last two of every plane), private use
  characters, DEL and the C1 controls are accepted and kept as sent: they are Unicode scalar
  values, UTF-8 and JSON encode them, PostgreSQL stores them, and Unicode (Corrigendum #9)
  allows them in interchange. Some keyboards and fonts of the field put private-use glyphs
  in typed text; refusing them would turn a customer's words into a 422 for no safety.

Unknown fields get bounds of their own (``UnknownFieldLimits``): they are stored as-is,
so without them a newer app, or anyone, could make the raw topic carry structures that no
later stage can serialise (a few hundred levels broke the JSON encoder). A number that does
not fit a double (``1e400``, which Python reads as infinity, or a huge integer) is refused
rather than turned into ``null``. Known fields keep the contract's own rules.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Any

from terrain_contracts.submission import (
    Agent,
    AppInfo,
    Customer,
    Feedback,
    FieldSubmission,
    Location,
)

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_LARGEST_DOUBLE = int(sys.float_info.max)
# Object fields of the contract and the known keys inside them; anything else is unknown.
_KNOWN_OBJECTS: dict[str, frozenset[str]] = {
    "agent": frozenset(Agent.model_fields),
    "location": frozenset(Location.model_fields),
    "customer": frozenset(Customer.model_fields),
    "feedback": frozenset(Feedback.model_fields),
    "app": frozenset(AppInfo.model_fields),
}
_KNOWN_TOP = frozenset(FieldSubmission.model_fields)
_SHOWN_KEY_CHARS = 64


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with the request, as the app shows it: where, and what is wrong."""

    field: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


@dataclass(frozen=True, slots=True)
class UnknownFieldLimits:
    """Bounds on a value the contract does not know. ``depth`` counts nested objects and
    arrays inside the field's value (``{"a": [1]}`` is 2)."""

    depth: int = 8
    keys: int = 100
    items: int = 500
    string_chars: int = 8000
    key_chars: int = 200


def screen(
    document: dict[str, Any],
    *,
    limits: UnknownFieldLimits,
    prefix: str = "",
    check_text: bool = True,
) -> list[FieldError]:
    """Every problem of ``document`` that the contract's validation does not see, each
    with its dotted path (after ``prefix``, e.g. ``submissions.3``).

    ``check_text=False`` says the body held no JSON escape that can make a control
    character or a surrogate (``may_hold_forbidden``): the characters of the strings are
    then not looked at one by one, only the bounds of unknown fields are checked.
    """
    errors: list[FieldError] = []
    where: tuple[str, ...] = (prefix,) if prefix else ()
    _unknown_fields(document, _KNOWN_TOP, where, limits, errors, check_text)
    for name, known in _KNOWN_OBJECTS.items():
        part = document.get(name)
        if isinstance(part, dict):
            _unknown_fields(part, known, (*where, name), limits, errors, check_text)
    if check_text:
        # The contract's own fields: their bounds are the contract's, their characters ours.
        for name in _KNOWN_TOP.intersection(document):
            value = document[name]
            if name in _KNOWN_OBJECTS and isinstance(value, dict):
                for inner in _KNOWN_OBJECTS[name].intersection(value):
                    _value(value[inner], (*where, name, inner), 0, limits, errors, True)
            else:
                _value(value, (*where, name), 0, limits, errors, True)
    return errors


def _unknown_fields(
    value: dict[str, Any],
    known: frozenset[str],
    where: tuple[str | int, ...],
    limits: UnknownFieldLimits,
    errors: list[FieldError],
    check_text: bool,
) -> None:
    if len(value) > limits.keys:
        errors.append(FieldError(_path(where), f"has {len(value)} keys, more than {limits.keys}"))
    if len(value) > len(known) or not known.issuperset(value):
        for key in value.keys() - known:
            _key(key, where, limits, errors, check_text)
            _value(value[key], (*where, key), 0, limits, errors, check_text)


# An escape that can make a C0 control character (\u0000-\u001f, \b, \f) or a surrogate
# (\ud800-\udfff): without one in the body, no string of it holds either, since JSON
# refuses raw control characters in strings and UTF-8 cannot encode a surrogate. An
# escaped backslash before "u" or "b" is a false alarm that only costs the full check.
_RISKY_ESCAPE = re.compile(r"\\(?:u(?:00[01]|[dD][89a-fA-F])|[bf])")


def may_hold_forbidden(body: str) -> bool:
    """Whether a string parsed from the JSON ``body`` may hold a character ``screen``
    refuses: the full check is needed only then (it is a few microseconds a submission)."""
    return _RISKY_ESCAPE.search(body) is not None


def _path(where: tuple[str | int, ...]) -> str:
    return ".".join(_shown(part) for part in where) or "(body)"


def _shown(part: str | int) -> str:
    if isinstance(part, int):
        return str(part)
    if not part:
        return '""'  # an empty key is a key too, and the path must still show where
    if len(part) > _SHOWN_KEY_CHARS or _FORBIDDEN.search(part):
        shown = _FORBIDDEN.sub(lambda c: f"\\u{ord(c.group()):04x}", part[:_SHOWN_KEY_CHARS])
        return shown + ("..." if len(part) > _SHOWN_KEY_CHARS else "")
    return part


def _key(
    key: str,
    where: tuple[str | int, ...],
    limits: UnknownFieldLimits,
    errors: list[FieldError],
    check_text: bool,
) -> None:
    problem = _string_problem(key) if check_text else None
    if problem is not None:
        errors.append(FieldError(_path((*where, key)), f"the key {problem}"))
    elif len(key) > limits.key_chars:
        errors.append(
            FieldError(
                _path((*where, key)),
                f"the key is {len(key)} characters long, more than {limits.key_chars}",
            )
        )


def _value(
    value: Any,
    where: tuple[str | int, ...],
    depth: int,
    limits: UnknownFieldLimits,
    errors: list[FieldError],
    check_text: bool,
) -> None:
    if isinstance(value, str):
        problem = _string_problem(value) if check_text else None
        if problem is not None:
            errors.append(FieldError(_path(where), problem))
        elif len(value) > limits.string_chars:
            errors.append(
                FieldError(
                    _path(where),
                    f"is {len(value)} characters long, more than {limits.string_chars}",
                )
            )
    elif isinstance(value, dict):
        if depth >= limits.depth:
            errors.append(FieldError(_path(where), f"nests deeper than {limits.depth} levels"))
            return
        if len(value) > limits.keys:
            errors.append(
                FieldError(_path(where), f"has {len(value)} keys, more than {limits.keys}")
            )
        for key, inner in value.items():
            _key(key, where, limits, errors, check_text)
            _value(inner, (*where, key), depth + 1, limits, errors, check_text)
    elif isinstance(value, list):
        if depth >= limits.depth:
            errors.append(FieldError(_path(where), f"nests deeper than {limits.depth} levels"))
            return
        if len(value) > limits.items:
            errors.append(
                FieldError(_path(where), f"has {len(value)} items, more than {limits.items}")
            )
            return
        for index, inner in enumerate(value):
            _value(inner, (*where, index), depth + 1, limits, errors, check_text)
    elif (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST_DOUBLE
    ):
        errors.append(FieldError(_path(where), "is a number too large for a double (IEEE 754)"))


def _string_problem(text: str) -> str | None:
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if code >= 0xD800:
        return (
            f"holds a lone surrogate U+{code:04X} at character {found.start()}: not valid Unicode"
        )
    return (
        f"holds the control character U+{code:04X} at character {found.start()}:"
        " only tab, line feed and carriage return are allowed"
    )
