"""Contract of the container deployment: docker-compose.yml, its Dockerfiles, .env.example.

Nothing here needs Docker, a broker or a database: the files are read, and what they name
is checked against the workspace (pyproject scripts, the CLI, the settings classes).

- docker-compose.yml is valid against the Compose Specification JSON Schema, and what it
  references exists (services, volumes, Dockerfiles).
- Each Dockerfile installs workspace packages with ``uv sync --frozen --no-dev``, copies every
  workspace member's pyproject.toml before its first ``uv sync``, runs as a non-root user,
  and its CMD (exec form) is a console script of a package it installs.
- The ``migrate`` commands are real ``terrain`` subcommands.
- No secret has a default: every secret is ``${VAR:?...}``, and .env.example leaves it empty.
- Every environment variable given to a Terrain process is one its settings class reads, and
  with fresh secrets that environment passes the settings' production checks.
- Dependencies wait for a healthcheck (or, for a one-shot job, for its success), and every
  long-running service has a healthcheck (in compose or in its image), but for the few in
  WITHOUT_HEALTHCHECK, whose image cannot run one and which nothing depends on.

The schema, tests/contract/compose-spec.schema.json, is compose-spec/compose-spec's
schema/compose-spec.json (Apache-2.0; JSON Schema draft 2020-12, with top-level ``models``
and ``jobs``), vendored byte for byte from the copy that the PyPI package check-jsonschema
0.39.0 ships as check_jsonschema/builtin_schemas/vendor/compose-spec.json. To update it,
take a newer copy the same way and change SCHEMA_SHA256.

Limits: compose interpolation is parsed for ``$$``, ``$VAR`` and ``${VAR[op]arg}`` with
op in ``:- - :? ? :+ +``; a nested ``${...}`` inside an ``arg`` is not supported.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import re
import secrets
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # no stubs in the dev group
import pytest
import typer
import yaml
from pydantic import AliasChoices
from typer.testing import CliRunner

from enrich.settings import EnrichSettings
from ingest.settings import IngestSettings
from notify.settings import NotifySettings
from terrain_runtime.settings import TerrainSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.schema.json")
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

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
# Long-running services whose image cannot run any healthcheck command, with the reason.
# Nothing may depend on them (test_dependencies_are_waited_for_and_have_healthchecks).
WITHOUT_HEALTHCHECK = {
    "otel-collector": "the image is FROM scratch: no shell, no HTTP client to probe with",
}
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|_KEY)$")
INTERPOLATION = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")
LONG_RUNNING = {"always", "unless-stopped", "on-failure"}


# ------------------------------------------------------------------------------ loading


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose().get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services"
    return found


def built_services() -> list[str]:
    return sorted(name for name, service in services().items() if "build" in service)


@cache
def workspace_members() -> dict[str, Path]:
    """Workspace package name -> its directory, from the root pyproject's member globs."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members: dict[str, Path] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for pyproject in sorted(ROOT.glob(f"{pattern}/pyproject.toml")):
            project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
            members[project["name"]] = pyproject.parent
    assert members, "no workspace members found"
    return members


def scripts_of(package: str) -> dict[str, str]:
    """Console scripts ([project.scripts]) of a workspace package: name -> entry point."""
    pyproject = workspace_members()[package] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    scripts = project.get("scripts", {})
    assert isinstance(scripts, dict)
    return {str(name): str(target) for name, target in scripts.items()}


def all_scripts() -> dict[str, str]:
    return {
        name: target
        for package in workspace_members()
        for name, target in scripts_of(package).items()
    }


# ---------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    instructions: tuple[Instruction, ...]

    def final_stage(self) -> list[Instruction]:
        starts = [
            i for i, instruction in enumerate(self.instructions) if instruction.keyword == "FROM"
        ]
        assert starts, f"{self.path}: no FROM"
        return list(self.instructions[starts[-1] :])

    def synced_packages(self) -> list[str]:
        """The --package of every `uv sync`; asserts each sync is frozen and without dev."""
        packages: list[str] = []
        for instruction in self.instructions:
            if instruction.keyword != "RUN" or "uv sync" not in instruction.args:
                continue
            words = shlex.split(instruction.args)
            sync = words[words.index("sync") :]
            assert "--frozen" in sync, (
                f"{self.path}: `uv sync` without --frozen: {instruction.args}"
            )
            assert "--no-dev" in sync, (
                f"{self.path}: `uv sync` without --no-dev: {instruction.args}"
            )
            assert "--package" in sync, (
                f"{self.path}: `uv sync` without --package: {instruction.args}"
            )
            packages.append(sync[sync.index("--package") + 1])
        assert packages, f"{self.path}: no `uv sync --package ...`"
        return packages

    def cmd(self) -> list[str]:
        commands = [i for i in self.final_stage() if i.keyword == "CMD"]
        assert commands, f"{self.path}: the final stage has no CMD"
        try:
            command = json.loads(commands[-1].args)
        except json.JSONDecodeError:
            command = None
        assert isinstance(command, list) and command and all(isinstance(w, str) for w in command), (
            f"{self.path}: CMD must be in exec (JSON array) form, so the program gets the signals"
        )
        return [str(word) for word in command]

    def has_healthcheck(self) -> bool:
        checks = [i for i in self.final_stage() if i.keyword == "HEALTHCHECK"]
        return bool(checks) and checks[-1].args.strip().upper() != "NONE"


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions with continuation lines joined; comments (and parser directives) dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path}: ends inside a continued line"
    return Dockerfile(path, tuple(instructions))


def dockerfile_of(service_name: str) -> Dockerfile:
    build = services()[service_name]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    return parse_dockerfile(ROOT / context / dockerfile)


def program_of(service_name: str) -> str:
    """The program a built service runs: its compose command's, or its image's CMD."""
    segments = command_segments(service_name)
    return segments[0][0] if segments else dockerfile_of(service_name).cmd()[0]


def command_segments(service_name: str) -> list[list[str]]:
    """The compose `command`, as its `&&`-separated commands (an `sh -c` script is opened)."""
    command = services()[service_name].get("command")
    if command is None:
        return []
    words = shlex.split(command) if isinstance(command, str) else [str(word) for word in command]
    if words and words[0] in {"sh", "/bin/sh", "bash", "/bin/bash"}:
        script = words[-1]
        assert any(flag.startswith("-") and "c" in flag for flag in words[1:-1]), words
        return [shlex.split(part) for part in script.split("&&")]
    return [words]


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


def environment_of(service_name: str) -> dict[str, str]:
    """The service's environment as written (before interpolation); values as strings."""
    environment = services()[service_name].get("environment", {})
    if isinstance(environment, list):
        pairs = (str(item).partition("=") for item in environment)
        return {key: value for key, _, value in pairs}
    return {str(key): as_text(value) for key, value in environment.items()}


def as_text(value: Any) -> str:
    """An environment value as the container sees it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


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


def test_every_build_dockerfile_exists() -> None:
    assert built_services(), "no service is built from this repository"
    for name in built_services():
        build = services()[name]["build"]
        assert isinstance(build, dict), f"{name}: give build.context and build.dockerfile"
        context = ROOT / build.get("context", ".")
        assert context.resolve() == ROOT, f"{name}: the build context must be the repository root"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"


@pytest.mark.parametrize("service_name", built_services())
def test_dockerfile_runs_a_console_script_of_a_package_it_installs(service_name: str) -> None:
    dockerfile = dockerfile_of(service_name)
    packages = dockerfile.synced_packages()
    unknown = set(packages) - set(workspace_members())
    assert not unknown, f"{dockerfile.path}: not workspace packages: {unknown}"
    installed_scripts = {script for package in packages for script in scripts_of(package)}
    program = dockerfile.cmd()[0]
    assert program in all_scripts(), f"{dockerfile.path}: CMD {program} is in no [project.scripts]"
    assert program in installed_scripts, (
        f"{dockerfile.path}: CMD {program} is not a script of the installed {packages}"
    )
    for segment in command_segments(service_name):
        assert segment[0] in installed_scripts, (
            f"{service_name}: command runs {segment[0]}, not a script of {packages}"
        )


@pytest.mark.parametrize("service_name", built_services())
def test_dockerfile_copies_every_workspace_pyproject_before_syncing(service_name: str) -> None:
    dockerfile = dockerfile_of(service_name)
    copied: set[str] = set()
    for instruction in dockerfile.instructions:
        if instruction.keyword == "RUN" and "uv sync" in instruction.args:
            break
        if instruction.keyword == "COPY":
            words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
            copied.update(w.rstrip("/") for w in words[:-1])
    expected = {"pyproject.toml", "uv.lock"} | {
        str((path / "pyproject.toml").relative_to(ROOT)) for path in workspace_members().values()
    }
    assert expected <= copied, (
        f"{dockerfile.path}: copy before the first `uv sync`: {expected - copied}"
    )


@pytest.mark.parametrize("service_name", built_services())
def test_image_runs_as_a_non_root_user(service_name: str) -> None:
    users = [
        i.args.split(":")[0]
        for i in dockerfile_of(service_name).final_stage()
        if i.keyword == "USER"
    ]
    assert users, f"{service_name}: the final stage sets no USER (it would run as root)"
    assert users[-1] not in {"root", "0"}, f"{service_name}: runs as {users[-1]}"


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


def test_ingest_listens_on_the_published_port() -> None:
    environment = environment_of("ingest")
    all_interfaces = "0.0.0.0"  # noqa: S104 - in its container, ingest must listen beyond loopback
    assert environment["TERRAIN_INGEST_HOST"] == all_interfaces
    port = environment["TERRAIN_INGEST_PORT"]
    published = [str(p).rsplit(":", 1)[-1] for p in services()["ingest"].get("ports", [])]
    assert port in published, f"ingest listens on {port} but publishes {published}"
    exposed = [
        i.args.split() for i in dockerfile_of("ingest").final_stage() if i.keyword == "EXPOSE"
    ]
    assert any(port in ports for ports in exposed), (
        f"services/ingest/Dockerfile does not EXPOSE {port}"
    )


def has_healthcheck(service_name: str) -> bool:
    check = services()[service_name].get("healthcheck")
    if check is not None:
        disabled = check.get("disable") is True or check.get("test") in (["NONE"], "NONE")
        return not disabled
    return "build" in services()[service_name] and dockerfile_of(service_name).has_healthcheck()


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
