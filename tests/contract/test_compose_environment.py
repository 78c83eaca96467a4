"""Contract of what compose gives the Terrain processes: environment, secrets, .env.example.

Nothing here needs Docker, a broker or a database: docker-compose.yml and .env.example are
read, and the environment is checked against the settings classes.

- No secret has a default: every secret is ``${VAR:?...}``, and .env.example leaves it empty.
- Every environment variable given to a Terrain process is one its settings class reads, and
  with fresh secrets that environment passes the settings' production checks.

Limits: compose interpolation is parsed for ``$$``, ``$VAR`` and ``${VAR[op]arg}`` with
op in ``:- - :? ? :+ +``; a nested ``${...}`` inside an ``arg`` is not supported.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import AliasChoices

from enrich.settings import EnrichSettings
from ingest.settings import IngestSettings
from notify.settings import NotifySettings
from terrain_runtime.settings import TerrainSettings
from tests.contract.deployment import (
    ROOT,
    built_services,
    compose,
    environment_of,
    program_of,
    services,
)

ENV_EXAMPLE = ROOT / ".env.example"
# The settings class of each Terrain program (console script) that compose runs. A new
# service must be added here, or the settings tests fail.
SETTINGS_OF_PROGRAM: dict[str, type[TerrainSettings]] = {
    "terrain": TerrainSettings,
    "terrain-ingest": IngestSettings,
    "terrain-enrich": EnrichSettings,
    "terrain-notify": NotifySettings,
}
# Every secret this deployment must receive; guards the secret checks against passing on a
# file where they would find nothing.
KNOWN_SECRETS = {
    "TERRAIN_PG_PASSWORD",
    "TERRAIN_PSEUDONYM_SECRET",
    "TERRAIN_SEALING_KEY",
    "TERRAIN_WEBHOOK_SIGNING_SECRET",
    "TERRAIN_ACK_LINK_SECRET",
    "GRAFANA_ADMIN_PASSWORD",
}
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|_KEY)$")
INTERPOLATION = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")


# ------------------------------------------------------------------------- interpolation


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


@dataclass(frozen=True)
class Reference:
    name: str
    op: str  # "" for a plain $VAR / ${VAR}


def references(text: str) -> list[Reference]:
    return [
        Reference(match["name"] or match["bare"], match["op"] or "")
        for match in INTERPOLATION.finditer(text)
        if match.group(0) != "$$"
    ]


def all_references() -> list[Reference]:
    return [reference for text in strings_in(compose()) for reference in references(text)]


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's interpolation of one value (without nested `${...}` in defaults)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        present, non_empty = name in variables, bool(variables.get(name))
        if op in {":?", "?"}:
            if not (non_empty if op == ":?" else present):
                raise KeyError(f"required variable {name} is missing a value: {arg}")
            return variables[name]
        if op == ":-":
            return variables[name] if non_empty else arg
        if op == "-":
            return variables[name] if present else arg
        if op == ":+":
            return arg if non_empty else ""
        if op == "+":
            return arg if present else ""
        return variables.get(name, "")

    return INTERPOLATION.sub(replace, text)


def env_example() -> tuple[dict[str, str], set[str]]:
    """(variables set in .env.example -> value, variables only shown in comments)."""
    active: dict[str, str] = {}
    commented: set[str] = set()
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if match := re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line):
            active[match[1]] = match[2]
        elif match := re.fullmatch(r"#\s*([A-Z_][A-Z0-9_]*)=.*", line):
            commented.add(match[1])
    return active, commented


def fresh_value(name: str) -> str:
    """A value for a variable in the production-boot test: new secrets every run."""
    if name.endswith("SEALING_KEY"):
        return base64.b64encode(secrets.token_bytes(32)).decode()
    if SECRET_NAME.search(name):
        return secrets.token_urlsafe(32)
    if name.endswith("_URL"):
        return "https://terrain.example.org"
    raise AssertionError(f"no test value for required variable {name}: add one to fresh_value")


# ------------------------------------------------------------------------------ settings


def env_names(settings_class: type[TerrainSettings]) -> dict[str, str]:
    """Environment variable (upper case) -> field, as pydantic-settings reads them."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    names: dict[str, str] = {}
    for field_name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            choices = [choice for choice in alias.choices if isinstance(choice, str)]
        elif isinstance(alias, str):
            choices = [alias]
        else:
            choices = [prefix + field_name]
        for choice in choices:
            names[choice.upper()] = field_name
    return names


def settings_of(service_name: str) -> type[TerrainSettings]:
    program = program_of(service_name)
    assert program in SETTINGS_OF_PROGRAM, (
        f"{service_name} runs {program}: add its settings class to SETTINGS_OF_PROGRAM"
    )
    return SETTINGS_OF_PROGRAM[program]


# --------------------------------------------------------------------------------- tests


def test_no_secret_has_a_default() -> None:
    secret_references = [r for r in all_references() if SECRET_NAME.search(r.name)]
    missing = KNOWN_SECRETS - {r.name for r in secret_references}
    assert not missing, f"secrets the deployment needs are not given: {sorted(missing)}"
    for reference in secret_references:
        assert reference.op == ":?", f"${{{reference.name}}} must be ${{{reference.name}:?...}}"
    required = r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}"
    for name in services():
        for key, value in environment_of(name).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(required, value), f"{name}: {key} must be only ${{VAR:?...}}"
            for match in URL_PASSWORD.finditer(value):
                assert re.fullmatch(required, match["password"]), (
                    f"{name}: the password in {key} must be a ${{VAR:?...}}"
                )


def test_env_example_documents_every_variable_and_holds_no_secret() -> None:
    active, commented = env_example()
    for reference in all_references():
        if reference.op in {":?", "?"}:
            assert reference.name in active, f".env.example: add {reference.name}= (it is required)"
        else:
            assert reference.name in active.keys() | commented, (
                f".env.example: document {reference.name} (as `# {reference.name}=default`)"
            )
    for name, value in active.items():
        if SECRET_NAME.search(name):
            assert value == "", f".env.example: {name} must stay empty (a placeholder to fill in)"


@pytest.mark.parametrize("service_name", built_services())
def test_environment_is_read_by_the_settings(service_name: str) -> None:
    settings_class = settings_of(service_name)
    readable = env_names(settings_class)
    unread = {key for key in environment_of(service_name) if key.upper() not in readable}
    assert not unread, f"{service_name}: {settings_class.__name__} reads none of {sorted(unread)}"
    # Every secret setting is given: in production its development default is refused.
    given = {readable[key.upper()] for key in environment_of(service_name)}
    secret_fields = settings_class.model_construct().secrets()  # defaults, no env read
    missing = set(secret_fields) - given
    assert not missing, f"{service_name}: no value for the secret settings {sorted(missing)}"


@pytest.mark.parametrize("service_name", built_services())
def test_settings_accept_the_environment_in_production(
    service_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_class = settings_of(service_name)
    required = {r.name for r in all_references() if r.op in {":?", "?"}}
    variables = {name: fresh_value(name) for name in required}
    environment = {
        key: interpolate(value, variables) for key, value in environment_of(service_name).items()
    }
    for key in list(os.environ):
        if key.upper() in env_names(settings_class) or key.upper().startswith("TERRAIN_"):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    settings = settings_class(_env_file=None)  # raises if a secret kept its default

    assert settings.environment == "production"
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.database_url.get_secret_value() == environment["DATABASE_URL"]
    assert "@postgres:5432/" in environment["DATABASE_URL"]
