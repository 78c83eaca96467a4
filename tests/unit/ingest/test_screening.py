"""What the pipeline cannot carry is refused with the path of the problem, at any depth,
in known fields, unknown fields and keys alike; what it can carry is accepted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.logic import SubmissionRejected, validate
from ingest.screening import UnknownFieldLimits, may_hold_forbidden, screen
from tests.unit.ingest.test_logic import accept

LIMITS = UnknownFieldLimits()


def refusals(document: dict[str, Any], prefix: str = "") -> dict[str, str]:
    with pytest.raises(SubmissionRejected) as caught:
        validate(document, prefix)
    return {e.field: e.problem for e in caught.value.errors}


@pytest.mark.parametrize(
    ("path", "character"),
    [
        (("feedback", "verbatim"), "\x00"),
        (("campaign_id",), "\x00"),
        (("agent", "employee_id"), "\x01"),
        (("customer", "msisdn"), "\x00"),
        (("location", "place"), "\x1f"),
        (("app", "version"), "\x08"),
        (("feedback", "mood"), "\x0c"),
        (("weather",), "\x00"),
        (("feedback", "verbatim"), "\ud800"),
        (("weather",), "\udfff"),
        (("customer", "loyalty"), "\udc00"),
    ],
)
def test_control_characters_and_lone_surrogates_are_refused_where_they_are(
    dakar_example: dict[str, Any], path: tuple[str, ...], character: str
) -> None:
    target = dakar_example
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = f"ok{character}ok"
    problems = refusals(dakar_example)
    field = ".".join(path)
    assert field in problems, problems
    expected = "lone surrogate" if character >= "\ud800" else "control character"
    assert expected in problems[field]
    assert f"U+{ord(character):04X}" in problems[field]


def test_the_batch_prefix_and_the_depth_are_in_the_path(dakar_example: dict[str, Any]) -> None:
    dakar_example["extra"] = {"list": [{"deep": ["fine", "bad\x00"]}]}
    dakar_example["feedback"]["topics"] = ["billing", "\x00"]
    problems = refusals(dakar_example, "submissions.4")
    assert "submissions.4.extra.list.0.deep.1" in problems
    assert "submissions.4.feedback.topics.1" in problems


def test_keys_are_screened_too(dakar_example: dict[str, Any]) -> None:
    dakar_example["customer"]["bad\x00key"] = 1
    dakar_example["extra"] = {"inner\ud800": "x"}
    problems = refusals(dakar_example)
    assert problems["customer.bad\\u0000key"].startswith("the key holds the control character")
    assert problems["extra.inner\\ud800"].startswith("the key holds a lone surrogate")


def test_an_empty_key_is_shown_in_the_path(dakar_example: dict[str, Any]) -> None:
    dakar_example[""] = "\x00"
    dakar_example["feedback"][""] = {"": "\x00"}
    assert set(refusals(dakar_example)) == {'""', 'feedback."".""'}


def test_tab_newline_and_carriage_return_are_text(dakar_example: dict[str, Any]) -> None:
    dakar_example["feedback"]["verbatim"] = "ligne 1\r\nligne 2\tfin"
    dakar_example["notes"] = {"a\tb": "x\ny"}
    accept(dakar_example)


def test_non_characters_private_use_and_c1_controls_are_kept(
    dakar_example: dict[str, Any],
) -> None:
    # Unicode scalar values that UTF-8, JSON and PostgreSQL all hold: kept as sent.
    kept = "\ufffe\uffff\ufdd0\ue000\U0010fffd\U0001fffe\x7f\x85\u200f\u0301"
    dakar_example["feedback"]["verbatim"] = kept
    dakar_example["extra"] = {kept: kept}
    dumped = json.loads(accept(dakar_example).model_dump_json())
    assert dumped["submission"]["feedback"]["verbatim"] == kept
    assert dumped["submission"]["extra"] == {kept: kept}


def nested(levels: int) -> Any:
    value: Any = 1
    for level in range(levels):
        value = {"a": value} if level % 2 else [value]
    return value


def test_unknown_fields_have_a_depth_limit(dakar_example: dict[str, Any]) -> None:
    dakar_example["fine"] = nested(8)
    dakar_example["feedback"]["fine"] = nested(8)
    accept(dakar_example)
    for levels in (9, 300, 900):
        dakar_example["deep"] = nested(levels)
        problems = refusals(dakar_example)
        [(field, problem)] = problems.items()
        assert field.startswith("deep.") and problem == "nests deeper than 8 levels"


def test_unknown_fields_have_size_limits(dakar_example: dict[str, Any]) -> None:
    dakar_example["wide"] = {f"k{i}": i for i in range(101)}
    dakar_example["long"] = ["x"] * 501
    dakar_example["app"]["notes"] = "x" * 8001
    dakar_example["feedback"]["tags"] = {"k" * 201: 1}
    problems = refusals(dakar_example)
    assert problems["wide"] == "has 101 keys, more than 100"
    assert problems["long"] == "has 501 items, more than 500"
    assert problems["app.notes"] == "is 8001 characters long, more than 8000"
    assert [p for f, p in problems.items() if f.startswith("feedback.tags.")] == [
        "the key is 201 characters long, more than 200"
    ]
    assert len(problems) == 4


def test_the_limits_are_settings(dakar_example: dict[str, Any]) -> None:
    dakar_example["extra"] = {"a": {"b": 1}}
    assert screen(dakar_example, limits=UnknownFieldLimits(depth=1))
    assert not screen(dakar_example, limits=UnknownFieldLimits(depth=2))


@pytest.mark.parametrize("number", ["1e400", "-1e400", str(10**400)])
def test_a_number_beyond_a_double_is_refused_not_nulled(
    dakar_example: dict[str, Any], number: str
) -> None:
    body = json.dumps(dakar_example)[:-1] + f', "reading": {{"value": {number}}}}}'
    problems = refusals(json.loads(body))
    assert problems == {"reading.value": "is a number too large for a double (IEEE 754)"}


def test_large_but_representable_numbers_travel(dakar_example: dict[str, Any]) -> None:
    dakar_example["reading"] = [1e308, -(2**1000), 2**63]
    dumped = json.loads(accept(dakar_example).model_dump_json())
    assert dumped["submission"]["reading"] == [1e308, -(2**1000), 2**63]


def test_screening_and_contract_errors_come_together(dakar_example: dict[str, Any]) -> None:
    dakar_example["feedback"]["satisfaction"] = 9
    dakar_example["feedback"]["verbatim"] = "\x00"
    problems = refusals(dakar_example)
    assert set(problems) == {"feedback.satisfaction", "feedback.verbatim"}
    assert "control character" in problems["feedback.verbatim"]


# Every category of Unicode, surrogates and controls included.
_any_text = st.text(st.characters(codec=None, categories=None), max_size=12)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_any_text, children, max_size=3)
    ),
    max_leaves=12,
)
_places = st.sampled_from(
    [
        (),
        ("agent",),
        ("location",),
        ("customer",),
        ("feedback",),
        ("app",),
    ]
)
_known_strings = st.sampled_from(
    [
        ("campaign_id",),
        ("agent", "employee_id"),
        ("customer", "company"),
        ("feedback", "verbatim"),
        ("location", "place"),
        ("app", "name"),
    ]
)


def _forbidden(text: str) -> bool:
    return any((c < " " and c not in "\t\n\r") or "\ud800" <= c <= "\udfff" for c in text)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    additions=st.lists(st.tuples(_places, _any_text, _values), max_size=4),
    strings=st.lists(st.tuples(_known_strings, _any_text), max_size=2),
    deep=st.integers(min_value=0, max_value=40),
)
def test_any_document_is_an_envelope_that_serialises_or_a_refusal_naming_a_field(
    additions: list[tuple[tuple[str, ...], str, Any]],
    strings: list[tuple[tuple[str, ...], str]],
    deep: int,
) -> None:
    from terrain_contracts.examples import load

    document: dict[str, Any] = load("field_submission.dakar")
    document = json.loads(json.dumps(document))
    for place, key, value in additions:
        target = document
        for part in place:
            target = target[part]
        if key not in target:
            target[key] = value
    for path, text in strings:
        document[path[0]] = dict(document[path[0]]) if len(path) > 1 else text
        if len(path) > 1:
            document[path[0]][path[1]] = text
    if deep:
        document["nested"] = nested(deep)
    try:
        envelope = accept(document)
    except SubmissionRejected as rejected:
        errors = rejected.errors
    else:
        errors = []
    if errors:
        assert all(e.field and e.problem for e in errors), [e.as_dict() for e in errors]
        return
    decoded = json.loads(envelope.model_dump_json())
    assert not any(_forbidden(text) for text in _strings(decoded))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@settings(max_examples=500, deadline=None)
@given(text=_any_text, ascii_only=st.booleans())
def test_a_body_without_a_risky_escape_holds_no_forbidden_character(
    text: str, ascii_only: bool
) -> None:
    # The cheap check that lets most bodies skip the character scan must never miss one.
    body = json.dumps({"k" + text: [text]}, ensure_ascii=ascii_only)
    try:
        body.encode()
    except UnicodeEncodeError:
        return  # a raw lone surrogate: no UTF-8 body can carry it
    if _forbidden(text):
        assert may_hold_forbidden(body)


def test_the_cheap_path_finds_the_same_bounds(dakar_example: dict[str, Any]) -> None:
    dakar_example["deep"] = nested(12)
    dakar_example["feedback"]["wide"] = {f"k{i}": "x" * 9000 for i in range(120)}
    body = json.dumps(dakar_example, ensure_ascii=False)
    assert not may_hold_forbidden(body)
    document = json.loads(body)
    assert screen(document, limits=LIMITS, check_text=False) == screen(document, limits=LIMITS)
    assert may_hold_forbidden(json.dumps({"a": "\x00"}))
    assert may_hold_forbidden(json.dumps({"a": "\ud83d\ude00"}))  # a pair costs the full check
    assert not may_hold_forbidden(json.dumps({"a": "é\t\n"}, ensure_ascii=False))


def test_the_list_of_problems_is_bounded(dakar_example: dict[str, Any]) -> None:
    dakar_example["many"] = {f"k{i}": {f"j{j}": "\x00" for j in range(90)} for i in range(90)}
    with pytest.raises(SubmissionRejected) as caught:
        validate(dakar_example)
    errors = caught.value.errors
    assert len(errors) == 51
    assert errors[-1].as_dict() == {"field": "(more)", "problem": "and 8050 more problems"}
