"""The container deployment as the contract tests read it: docker-compose.yml, its images,
and the workspace they are built from (packages and their console scripts).

Nothing here needs Docker: the files are parsed, and what they name is looked up in the
workspace's pyproject files.
"""

from __future__ import annotations

import shlex
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.contract.dockerfile import Dockerfile, parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


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


def build_args_of(service_name: str) -> dict[str, str]:
    """The service's build.args (mapping or list of NAME=VALUE), values as strings."""
    build = services()[service_name]["build"]
    args = {} if isinstance(build, str) else build.get("args", {})
    if isinstance(args, list):
        pairs = (str(item).partition("=") for item in args)
        return {key: value for key, _, value in pairs}
    return {str(key): as_text(value) for key, value in args.items()}


def dockerfile_of(service_name: str) -> Dockerfile:
    """The service's Dockerfile, read for the build compose runs (with its build.args)."""
    build = services()[service_name]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    return parse_dockerfile(ROOT / context / dockerfile, build_args_of(service_name))


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
