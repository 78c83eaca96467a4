"""The receipt's models: their examples validate, and a receipt cannot carry what the
field app must not see."""

from __future__ import annotations

from typing import Any

import pytest

from terrain_contracts.receipts import (
    MAX_RECEIPT_IDS,
    ReceiptList,
    ReceiptQuery,
    SubmissionReceipt,
)


@pytest.mark.parametrize("model", [SubmissionReceipt, ReceiptQuery])
def test_the_schema_examples_validate(model: Any) -> None:
    for example in model.model_json_schema()["examples"]:
        model.model_validate(example)


def test_a_receipt_holds_ids_statuses_times_and_reasons_only() -> None:
    assert set(SubmissionReceipt.model_fields) == {
        "submission_id",
        "status",
        "stored_at",
        "alert_raised",
        "failure_reason",
        "failed_at",
    }
    assert set(ReceiptList.model_fields) == {"receipts"}


def test_a_query_is_bounded() -> None:
    schema = ReceiptQuery.model_json_schema()["properties"]["submission_ids"]
    assert (schema["minItems"], schema["maxItems"]) == (1, MAX_RECEIPT_IDS)


def test_a_failure_reason_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="failure_reason"):
        SubmissionReceipt.model_validate(
            {
                "submission_id": "0b9f2f4e-6a4f-4c1e-9b53-2f1d3c7f9a10",
                "status": "failed",
                "failure_reason": "the customer said 77 123 45 67",
            }
        )
