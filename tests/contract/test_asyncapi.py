"""The event contract a consumer team reads (docs/contracts/asyncapi.json): every topic of
the registry is a channel with a real payload and its headers, every producer sends and
every consumer receives on it, and records built as the services build them validate
against it. (test_documents.py checks that the file is what the code generates.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from opentelemetry.sdk.trace import TracerProvider

from terrain_contracts import headers
from terrain_contracts.topics import (
    DEAD_LETTERS,
    SUBMISSIONS_ENRICHED,
    SUBMISSIONS_RAW,
    TOPICS,
    TopicSpec,
)
from terrain_contracts.vocabulary import FailureReason
from terrain_runtime.dlq import Failure, SourceRecord, dead_letter_message
from terrain_runtime.tracing import headers_for
from terrain_testkit.factories import raw_record, stored_record

DOCUMENT: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/contracts/asyncapi.json").read_text("utf-8")
)


def _resolve(reference: dict[str, Any]) -> dict[str, Any]:
    target: Any = DOCUMENT
    for part in reference["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    assert isinstance(target, dict)
    return target


def _message(spec: TopicSpec) -> dict[str, Any]:
    assert spec.id in DOCUMENT["channels"], f"{spec.name()} is not in the AsyncAPI document"
    channel = DOCUMENT["channels"][spec.id]
    assert channel["address"] == spec.name()
    (reference,) = channel["messages"].values()
    return _resolve(reference)


def _validate(instance: Any, reference: dict[str, Any]) -> None:
    schema = {"$ref": reference["$ref"], "components": DOCUMENT["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


@pytest.mark.parametrize("spec", TOPICS, ids=lambda spec: spec.id)
def test_every_topic_is_a_channel_with_a_payload_and_headers(spec: TopicSpec) -> None:
    message = _message(spec)
    payload = _resolve(message["payload"])
    assert payload["type"] == "object"
    assert payload["properties"], f"{spec.name()} has no payload"
    assert "schema_version" in payload["properties"]
    carried = _resolve(message["headers"])["properties"]
    assert {headers.CONTENT_TYPE, headers.TRACEPARENT, headers.TRACESTATE} <= set(carried)
    assert message["bindings"]["kafka"]["key"]["type"] == "string"


@pytest.mark.parametrize("spec", TOPICS, ids=lambda spec: spec.id)
def test_each_producer_sends_and_each_consumer_receives(spec: TopicSpec) -> None:
    on_channel = {
        (operation["action"], operation["tags"][0]["name"])
        for operation in DOCUMENT["operations"].values()
        if operation["channel"] == {"$ref": f"#/channels/{spec.id}"}
    }
    assert on_channel == {("send", s) for s in spec.producers} | {
        ("receive", s) for s in spec.consumers
    }


def test_the_dead_letter_topic_is_a_channel_its_producers_send_to() -> None:
    assert _message(DEAD_LETTERS)["name"] == "DeadLetterV1"
    assert {"enrich-send-dead_letters", "notify-send-dead_letters"} <= set(DOCUMENT["operations"])


def _traced_headers() -> dict[str, str]:
    """The headers ingest and enrich put on a submission record: JSON and its trace."""
    span = TracerProvider().get_tracer("test").start_span("submission")
    try:
        return {headers.CONTENT_TYPE: headers.JSON, **headers_for(span)}
    finally:
        span.end()


def test_submission_records_as_the_services_build_them_match_the_document() -> None:
    traced = _traced_headers()
    for spec, (_, value) in (
        (SUBMISSIONS_RAW, raw_record()),
        (SUBMISSIONS_ENRICHED, stored_record()),
    ):
        message = _message(spec)
        _validate(json.loads(value), message["payload"])
        _validate(traced, message["headers"])
        _validate({**traced, headers.REPLAY_OF: "42"}, message["headers"])


def test_a_dead_letter_as_the_consumers_build_it_matches_the_document() -> None:
    traceparent = _traced_headers()[headers.TRACEPARENT].encode()
    failure = Failure(
        SourceRecord("raw", 2, 7, b"id", b"{}", ((headers.TRACEPARENT, traceparent),)),
        FailureReason.INVALID,
        "submission.customer: field required",
    )
    _, value, carried = dead_letter_message(
        failure, service="enrich", service_version="1", consumer_group="terrain-enrich"
    )
    message = _message(DEAD_LETTERS)
    _validate(json.loads(value), message["payload"])
    _validate({k: v.decode() for k, v in carried}, message["headers"])
