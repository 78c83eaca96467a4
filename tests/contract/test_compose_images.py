"""Contract of the images compose builds: deploy/docker/Dockerfile, one stage per program.

Nothing here needs Docker: the Dockerfile is read for each built service's build (its
``build.args`` given), and what it names is checked against the workspace's pyproject files.

- Each built service names a Dockerfile in the repository, with the repository root as the
  build context.
- The image installs workspace packages with ``uv sync --frozen --no-dev``, copies every
  workspace member's pyproject.toml before its first ``uv sync``, runs as a non-root user,
  and its CMD (exec form) is a console script of a package it installs.
- ingest listens on the port compose publishes, and its image exposes it.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

import pytest

from tests.contract.deployment import (
    ROOT,
    all_scripts,
    built_services,
    command_segments,
    dockerfile_of,
    environment_of,
    scripts_of,
    services,
    workspace_members,
)

GLOB = set("*?[")


def matches(path: str, pattern: str) -> bool:
    """Whether a COPY source (a path, or a pattern of the Dockerfile) names this file."""
    wanted, given = PurePosixPath(path), PurePosixPath(pattern)
    return len(wanted.parts) == len(given.parts) and wanted.match(pattern)


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
            words = shlex.split(instruction.args)
            sources = [w.rstrip("/") for w in words if not w.startswith("--")][:-1]
            patterns = [source for source in sources if GLOB & set(source)]
            # Without --parents, COPY puts every file a pattern matches in one directory.
            assert not patterns or "--parents" in words, (
                f"{dockerfile.path}: COPY {patterns} needs --parents to keep their directories"
            )
            copied.update(sources)
    expected = {"pyproject.toml", "uv.lock"} | {
        str((path / "pyproject.toml").relative_to(ROOT)) for path in workspace_members().values()
    }
    missing = {path for path in expected if not any(matches(path, source) for source in copied)}
    assert not missing, f"{dockerfile.path}: copy before the first `uv sync`: {missing}"


@pytest.mark.parametrize("service_name", built_services())
def test_image_runs_as_a_non_root_user(service_name: str) -> None:
    users = [
        i.args.split(":")[0]
        for i in dockerfile_of(service_name).final_stage()
        if i.keyword == "USER"
    ]
    assert users, f"{service_name}: the final stage sets no USER (it would run as root)"
    assert users[-1] not in {"root", "0"}, f"{service_name}: runs as {users[-1]}"


def test_ingest_listens_on_the_published_port() -> None:
    environment = environment_of("ingest")
    all_interfaces = "0.0.0.0"  # noqa: S104 - in its container, ingest must listen beyond loopback
    assert environment["TERRAIN_INGEST_HOST"] == all_interfaces
    port = environment["TERRAIN_INGEST_PORT"]
    published = [str(p).rsplit(":", 1)[-1] for p in services()["ingest"].get("ports", [])]
    assert port in published, f"ingest listens on {port} but publishes {published}"
    dockerfile = dockerfile_of("ingest")
    exposed = [i.args.split() for i in dockerfile.final_stage() if i.keyword == "EXPOSE"]
    assert any(port in ports for ports in exposed), (
        f"{dockerfile.path}: the ingest image does not EXPOSE {port}"
    )
