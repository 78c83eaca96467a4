"""A resend is a resend: the content hash covers what the agent recorded, not how or when
the app sent it, and rows hashed by the previous version still compare correctly."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from enrich.logic import documents, same_content
from terrain_contracts.messages import PseudonymisedSubmission
from terrain_testkit.factories import field_submission, raw_envelope


def content_hash(envelope_submission: PseudonymisedSubmission) -> str:
    return documents(envelope_submission)[1]


def _v1_hash(document: str) -> str:
    # The previous hash: sha256 of the whole canonical document, sent_at and app included.
    return hashlib.sha256(
        json.dumps(
            json.loads(document), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    ).hexdigest()


def test_a_resend_with_a_new_sent_at_and_a_newer_app_hashes_alike() -> None:
    first = field_submission()
    resend = json.loads(json.dumps(first))
    resend["sent_at"] = "2025-04-16T08:00:00+00:00"
    resend["app"]["version"] = "2.4.0"
    # Each send is sealed anew (a fresh nonce): that must not matter either.
    assert content_hash(raw_envelope(first).submission) == content_hash(
        raw_envelope(resend).submission
    )


def test_a_resend_without_sent_at_or_app_hashes_alike() -> None:
    first = field_submission()
    bare = json.loads(json.dumps(first))
    del bare["sent_at"], bare["app"]
    assert content_hash(raw_envelope(first).submission) == content_hash(
        raw_envelope(bare).submission
    )


def test_what_the_agent_recorded_changes_the_hash() -> None:
    first = field_submission()
    for path, value in [
        (("feedback", "satisfaction"), 5),
        (("feedback", "verbatim"), "autre chose"),
        (("collected_at",), "2025-04-15T09:12:34+00:00"),
        (("unknown_field",), "kept"),
    ]:
        changed = json.loads(json.dumps(first))
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert content_hash(raw_envelope(first).submission) != content_hash(
            raw_envelope(changed).submission
        ), path


def test_the_hash_is_versioned_and_the_stored_document_keeps_the_first_send() -> None:
    first = field_submission()
    document, digest = documents(raw_envelope(first).submission)
    assert digest.startswith("v2:") and len(digest) == 3 + 64
    stored = json.loads(document)
    assert datetime.fromisoformat(stored["sent_at"]) == datetime.fromisoformat(first["sent_at"])
    assert stored["app"] == first["app"]
    assert "msisdn_sealed" not in stored["customer"]


def test_a_row_stored_under_v1_recognises_a_resend_with_a_new_sent_at() -> None:
    first = field_submission()
    document, _ = documents(raw_envelope(first).submission)
    resend = json.loads(json.dumps(first))
    resend["sent_at"] = "2025-04-16T08:00:00+00:00"
    resend["app"]["version"] = "9.9.9"
    _, resend_hash = documents(raw_envelope(resend).submission)
    # jsonb gives the document back with its own spacing and key order.
    from_jsonb = json.dumps(json.loads(document), indent=1)
    assert same_content(_v1_hash(document), from_jsonb, resend_hash)
    conflicting = json.loads(json.dumps(first))
    conflicting["feedback"]["satisfaction"] = 5
    _, conflicting_hash = documents(raw_envelope(conflicting).submission)
    assert not same_content(_v1_hash(document), from_jsonb, conflicting_hash)


def test_a_v2_row_compares_by_hash_alone() -> None:
    _, digest = documents(raw_envelope().submission)
    assert same_content(digest, None, digest)
    assert not same_content(digest, None, "v2:" + "0" * 64)
