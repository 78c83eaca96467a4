"""AsyncAPI 3.0 of Terrain's Kafka topics, built from the topic registry.

The registry (``topics.py``) is the one source: each entry becomes a channel with its
message (the JSON Schemas of its value and headers, from the pydantic models, and its
key), a ``send`` operation per producer and a ``receive`` operation per consumer. A
consumer team reads here what a topic carries and who writes it, the dead-letter topic
included. FastStream's own document cannot serve: Terrain's consumers read raw batches
(to decode and dead-letter each record themselves), so it sees no payload, and it knows
no producer.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from terrain_contracts.topics import TOPICS, TopicSpec

_KAFKA_BINDING = "0.5.0"
_SCHEMAS = "#/components/schemas/{model}"

# Who the registry's producers and consumers are, for the operations' readers.
SERVICES: dict[str, str] = {
    "ingest": "HTTP API of the field app: publishes each accepted submission (acks=all)"
    " before it answers 202.",
    "enrich": "Geo, segment and text signals; stores each submission in PostgreSQL exactly"
    " once, then publishes it enriched.",
    "notify": "Decides and routes alerts to country managers from enriched submissions.",
    "cli": "`terrain failed replay`, the operators' CLI: re-publishes a failed record's"
    " original payload to its source topic once the cause is fixed.",
}

_DESCRIPTION = (
    "Kafka topics between Terrain's services, generated from the topic registry"
    " (terrain_contracts.topics). A topic's name carries its schema version: within a"
    " version only optional fields are added, anything else is a new version on a new"
    " topic, and consumers read the current and the previous one. Every deployment may"
    " prefix every name with TERRAIN_TOPIC_NAMESPACE (empty by default). Values and"
    " headers are UTF-8 JSON text; no record carries a phone number in clear."
)


def _summary(model: type[BaseModel]) -> str:
    return inspect.cleandoc(model.__doc__ or model.__name__).split("\n\n", 1)[0]


def _ref(path: str) -> dict[str, str]:
    return {"$ref": path}


def _channel(spec: TopicSpec) -> dict[str, Any]:
    message = spec.value.__name__
    return {
        "address": spec.name(),
        "title": spec.id,
        "description": f"{spec.description} Schema version {spec.version},"
        f" {spec.compatibility} compatible.",
        "messages": {message: _ref(f"#/components/messages/{message}")},
        "bindings": {
            "kafka": {
                "topic": spec.name(),
                "partitions": spec.partitions,
                "topicConfiguration": {"retention.ms": spec.retention_ms},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def _message(spec: TopicSpec) -> dict[str, Any]:
    return {
        "name": spec.value.__name__,
        "title": spec.value.__name__,
        "summary": _summary(spec.value),
        "contentType": "application/json",
        "headers": _ref(_SCHEMAS.format(model=spec.headers.__name__)),
        "payload": _ref(_SCHEMAS.format(model=spec.value.__name__)),
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"The record key: {spec.key}."},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def _operation(spec: TopicSpec, service: str, action: Literal["send", "receive"]) -> dict[str, Any]:
    message = spec.value.__name__
    verb = "publishes to" if action == "send" else "reads"
    return {
        "action": action,
        "channel": _ref(f"#/channels/{spec.id}"),
        "messages": [_ref(f"#/channels/{spec.id}/messages/{message}")],
        "title": f"{service} {verb} {spec.name()}",
        "summary": f"{service} {verb} {spec.name()} ({message}).",
        "description": SERVICES[service],
        "tags": [{"name": service}],
    }


def operation_id(spec: TopicSpec, service: str, action: Literal["send", "receive"]) -> str:
    """The stable id of a service's operation on a topic: ``ingest-send-submissions_raw``."""
    return f"{service}-{action}-{spec.id}"


def asyncapi_document(topics: tuple[TopicSpec, ...] = TOPICS) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``topics``, as a JSON-ready dict."""
    models = sorted(
        {model for spec in topics for model in (spec.value, spec.headers)},
        key=lambda model: model.__name__,
    )
    _, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template=_SCHEMAS
    )
    operations: dict[str, Any] = {}
    for spec in topics:
        for service in spec.producers:
            operations[operation_id(spec, service, "send")] = _operation(spec, service, "send")
        for service in spec.consumers:
            operations[operation_id(spec, service, "receive")] = _operation(
                spec, service, "receive"
            )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Terrain event pipeline",
            "version": "1",
            "description": _DESCRIPTION,
            "tags": [
                {"name": service, "description": description}
                for service, description in SERVICES.items()
            ],
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker deploy/local starts; elsewhere KAFKA_BOOTSTRAP_SERVERS.",
            }
        },
        "channels": {spec.id: _channel(spec) for spec in topics},
        "operations": operations,
        "components": {
            "messages": {spec.value.__name__: _message(spec) for spec in topics},
            "schemas": definitions.get("$defs", {}),
        },
    }
