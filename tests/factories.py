"""Build realistic messages the way the services do, for tests of the later stages."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from ingest.logic import Device, receive, validate
from terrain_contracts.examples import load
from terrain_contracts.markets import Market
from terrain_contracts.messages import SubmissionReceivedV1
from terrain_runtime.settings import TerrainSettings

_SETTINGS = TerrainSettings(environment="test")


def field_submission(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(load("field_submission.brief"))
    document["submission_id"] = str(uuid4())
    for dotted, value in changes.items():
        target = document
        *path, last = dotted.split("__")
        for key in path:
            target = target.setdefault(key, {})
        target[last] = value
    return document


def raw_envelope(document: dict[str, Any] | None = None) -> SubmissionReceivedV1:
    document = document or field_submission()
    market = Market(document["agent"]["market"])
    return receive(
        validate(document),
        device=Device(UUID(int=1), market, "test"),
        received_at=datetime.now(UTC),
        pseudonymiser=_SETTINGS.pseudonymiser(),
        sealer=_SETTINGS.sealer(),
        ingest_version="test",
    )


def raw_record(document: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
    envelope = raw_envelope(document)
    return str(envelope.submission_id).encode(), envelope.model_dump_json().encode()


def stored_record(
    document: dict[str, Any] | None = None, signals: list[str] | None = None
) -> tuple[bytes, bytes]:
    from terrain_contracts.messages import Enrichment, SubmissionStoredV1

    envelope = raw_envelope(document)
    stored = SubmissionStoredV1(
        submission_id=envelope.submission_id,
        market=envelope.submission.agent.market,
        received_at=envelope.received_at,
        stored_at=datetime.now(UTC),
        enrichment=Enrichment(signals=signals or []),
        submission=envelope.submission,
    )
    return str(stored.submission_id).encode(), stored.model_dump_json().encode()
