"""Contract of docker-compose.yml itself: valid, consistent, started in the right order.

Nothing here needs Docker, a broker or a database: the file is read, and what it names is
checked against itself and the workspace (the CLI's commands, the images' healthchecks).

- docker-compose.yml is valid against the Compose Specification JSON Schema, and the services
  and volumes it references exist.
- The ``migrate`` commands are real ``terrain`` subcommands, and every built service waits
  for ``migrate`` to succeed.
- Dependencies wait for a healthcheck (or, for a one-shot job, for its success), and every
  long-running service has a healthcheck (in compose or in its image), but for the few in
  WITHOUT_HEALTHCHECK, whose image cannot run one and which nothing depends on.

The schema, tests/contract/compose-spec.schema.json, is compose-spec/compose-spec's
schema/compose-spec.json (Apache-2.0; JSON Schema draft 2020-12, with top-level ``models``
and ``jobs``), vendored byte for byte from the copy that the PyPI package check-jsonschema
0.39.0 ships as check_jsonschema/builtin_schemas/vendor/compose-spec.json. To update it,
take a newer copy the same way and change SCHEMA_SHA256.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import jsonschema  # no stubs in the dev group
import typer
from typer.testing import CliRunner

from tests.contract.deployment import (
    all_scripts,
    built_services,
    command_segments,
    compose,
    dockerfile_of,
    services,
)

SCHEMA_FILE = Path(__file__).with_name("compose-spec.schema.json")
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
# Long-running services whose image cannot run any healthcheck command, with the reason.
# Nothing may depend on them (test_dependencies_are_waited_for_and_have_healthchecks).
WITHOUT_HEALTHCHECK = {
    "otel-collector": "the image is FROM scratch: no shell, no HTTP client to probe with",
}
LONG_RUNNING = {"always", "unless-stopped", "on-failure"}


def has_healthcheck(service_name: str) -> bool:
    check = services()[service_name].get("healthcheck")
    if check is not None:
        disabled = check.get("disable") is True or check.get("test") in (["NONE"], "NONE")
        return not disabled
    return "build" in services()[service_name] and dockerfile_of(service_name).has_healthcheck()


def test_vendored_schema_is_the_recorded_copy() -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256, (
        "compose-spec.schema.json changed: vendor it unmodified and update SCHEMA_SHA256"
    )


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(
        validator_class(schema).iter_errors(compose()), key=lambda e: list(e.absolute_path)
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in errors
    )


def test_references_between_services_and_volumes_resolve() -> None:
    declared_volumes = set(compose().get("volumes") or {})
    for name, service in services().items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services(), f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = (
                volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            )
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared_volumes, f"{name} uses undeclared volume {source}"


def test_migrate_commands_are_terrain_subcommands() -> None:
    segments = command_segments("migrate")
    assert segments, "migrate has no command"
    runner = CliRunner()
    for segment in segments:
        program, *arguments = segment
        module_name, _, attribute = all_scripts()[program].partition(":")
        app = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(app, typer.Typer), f"{program} is not a typer app"
        result = runner.invoke(app, [*arguments, "--help"])
        assert result.exit_code == 0, f"`{' '.join(segment)}` is not a command: {result.output}"


def test_migrate_creates_schema_and_topics_before_the_services_start() -> None:
    commands = [" ".join(segment[1:3]) for segment in command_segments("migrate")]
    assert commands == ["db migrate", "topics create"]
    assert services()["migrate"].get("restart") == "no"
    for name in built_services():
        if name != "migrate":
            condition = services()[name].get("depends_on", {}).get("migrate", {}).get("condition")
            assert condition == "service_completed_successfully", (
                f"{name} does not wait for migrate"
            )


def test_dependencies_are_waited_for_and_have_healthchecks() -> None:
    for name, service in services().items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions (a mapping)"
        for dependency, spec in depends_on.items():
            one_shot = services()[dependency].get("restart", "no") == "no"
            expected = "service_completed_successfully" if one_shot else "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {dependency}: use {expected}"
            if not one_shot:
                assert has_healthcheck(dependency), (
                    f"{dependency} is depended on: give it a healthcheck"
                )


def test_long_running_services_have_healthchecks() -> None:
    for name, service in services().items():
        if service.get("restart") in LONG_RUNNING and name not in WITHOUT_HEALTHCHECK:
            assert has_healthcheck(name), f"{name}: no healthcheck in compose or in its image"
