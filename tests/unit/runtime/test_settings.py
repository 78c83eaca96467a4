from __future__ import annotations

import pytest
from pydantic import ValidationError

from terrain_runtime.settings import TerrainSettings


def test_defaults_work_in_development() -> None:
    settings = TerrainSettings(environment="development")
    assert settings.pseudonymiser().pseudonym("+221771234567").startswith("k1:")


def test_production_refuses_default_secrets() -> None:
    with pytest.raises(ValidationError, match="development default"):
        TerrainSettings(environment="production")


def test_production_starts_with_real_secrets() -> None:
    settings = TerrainSettings(
        environment="production",
        pseudonym_secret="a-real-secret-from-the-vault",
        sealing_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        database_url="postgresql://terrain:s3cret-pw@db:5432/terrain",
    )
    assert settings.environment == "production"


def test_sealing_key_must_be_aes_256() -> None:
    with pytest.raises(ValidationError, match="32 bytes"):
        TerrainSettings(sealing_key="c2hvcnQ=")
