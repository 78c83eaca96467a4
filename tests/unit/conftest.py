"""The unit tests' process: its tracer provider, and the fixtures every test may ask for."""

import pytest

from tests.unit.exported import exported, install  # noqa: F401 - the fixture, shared


def pytest_configure(config: pytest.Config) -> None:
    install()
