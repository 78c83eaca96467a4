"""Shared test helpers. Markers are strict; every test has a timeout (pyproject)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from terrain_contracts.examples import load


@pytest.fixture
def dakar_example() -> dict[str, Any]:
    """The field-app contract's example submission (a fresh copy per test)."""
    return copy.deepcopy(load("field_submission.dakar"))
