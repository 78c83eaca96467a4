"""The receipt's OpenAPI examples are what the code answers: each validates against its
model, and the documented 422s are the problems the routes raise."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from ingest.problems import PROBLEM_JSON, Problem
from ingest.receipt_openapi import RECEIPT_OPENAPI, RECEIPTS_OPENAPI
from ingest.receipts import path_submission_id, queried_ids
from terrain_contracts.receipts import ReceiptList, ReceiptQuery, SubmissionReceipt


def _examples(answer: dict[str, Any]) -> list[Any]:
    return [e["value"] for e in answer["content"]["application/json"]["examples"].values()]


def test_every_answer_example_validates_against_its_model() -> None:
    for example in _examples(RECEIPT_OPENAPI["responses"]["200"]):
        SubmissionReceipt.model_validate(example)
    for example in _examples(RECEIPTS_OPENAPI["responses"]["200"]):
        ReceiptList.model_validate(example)
    body = RECEIPTS_OPENAPI["requestBody"]["content"]["application/json"]["example"]
    ReceiptQuery.model_validate(body)


def _documented(operation: dict[str, Any]) -> dict[str, Any]:
    example: dict[str, Any] = operation["responses"]["422"]["content"][PROBLEM_JSON]["example"]
    return example


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        (RECEIPT_OPENAPI, lambda: path_submission_id("not-a-uuid")),
        (RECEIPTS_OPENAPI, lambda: queried_ids({"submission_ids": [str(uuid4())] * 501})),
    ],
)
def test_the_documented_422_is_the_one_raised(operation: dict[str, Any], call: Any) -> None:
    with pytest.raises(Problem) as raised:
        call()
    assert raised.value.body() == _documented(operation)
