"""Contract tests: examples validate against the models and the exported JSON Schemas; the
documents in docs/contracts are what the code generates (regenerate with `make docs`)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from terrain_cli.documents import render_all
from terrain_contracts.examples import load, names
from terrain_contracts.submission import FieldSubmission
from terrain_contracts.topics import TOPICS
from terrain_testkit.factories import raw_envelope

DOCS = Path(__file__).resolve().parents[2] / "docs" / "contracts"


@pytest.fixture(scope="module")
def documents() -> dict[str, str]:
    return render_all()


@pytest.mark.parametrize("relative", sorted(render_all()))
def test_generated_documents_are_up_to_date(documents: dict[str, str], relative: str) -> None:
    on_disk = DOCS / relative
    assert on_disk.exists(), f"{relative} missing: run `make docs`"
    assert on_disk.read_text("utf-8") == documents[relative], f"{relative} stale: run `make docs`"


@pytest.mark.parametrize("name", [n for n in names() if n.startswith("field_submission")])
def test_field_examples_match_the_exported_schema(documents: dict[str, str], name: str) -> None:
    schema = json.loads(documents["schemas/field_submission.v1.json"])
    jsonschema.validate(load(name), schema)
    FieldSubmission.model_validate(load(name))


def test_raw_envelope_matches_its_topic_schema(documents: dict[str, str]) -> None:
    spec = next(t for t in TOPICS if t.id == "submissions_raw")
    schema = json.loads(documents[f"schemas/{spec.name()}.json"])
    jsonschema.validate(json.loads(raw_envelope().model_dump_json()), schema)


def test_every_topic_is_versioned_and_partitioned_for_scale() -> None:
    for spec in TOPICS:
        assert spec.name().endswith(f".v{spec.version}")
        assert spec.partitions >= 6
        assert spec.producers
