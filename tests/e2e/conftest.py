"""End-to-end fixtures: the three services as real processes against the real broker and
database (a fresh database for the session, fresh topics per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from terrain_testkit.processes import Stack, running_stack
from tests.integration.conftest import database_url, namespace  # noqa: F401 - shared fixtures


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Extra environment for the services; a test module overrides it (e.g. OTLP endpoint)."""
    return {}


@pytest.fixture
def stack(
    database_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    request: pytest.FixtureRequest,
    stack_env: dict[str, str],
) -> Iterator[Stack]:
    """The three services on this test's database and topics, logs named after the test."""
    with running_stack(database_url, namespace, request.node.name, **stack_env) as stack:
        yield stack
