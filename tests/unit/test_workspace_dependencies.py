"""Every workspace member declares what its sources import, workspace members and
third-party libraries alike: one installed on its own (a service's image, the CLI on an
operator's laptop) must not rely on another member pulling a library in for it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = sorted(
    path / "pyproject.toml"
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"][
        "members"
    ]
    for path in ROOT.glob(pattern)
)


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    bare = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def _modules(member: Path) -> set[str]:
    return {p.name for p in (member.parent / "src").iterdir() if (p / "__init__.py").exists()}


@cache
def _owners() -> dict[str, str]:
    """Dotted module name -> the distribution that installs it: workspace members from
    their pyproject.toml (they are installed editable), the others from their RECORD."""
    owners: dict[str, str] = {}
    for dist in distributions():
        name = _name(dist.metadata["Name"])
        for file in dist.files or []:
            if file.suffix == ".py":
                parts = file.with_suffix("").parts
                module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                owners.setdefault(module, name)
    for member in MEMBERS:
        name = _name(tomllib.loads(member.read_text())["project"]["name"])
        owners.update(dict.fromkeys(_modules(member), name))
    return owners


def _owner(module: str) -> str | None:
    """The distribution of ``module`` or of its nearest parent that one installs (a
    namespace package such as ``opentelemetry`` belongs to no single distribution)."""
    parts = module.split(".")
    while parts:
        if (owner := _owners().get(".".join(parts))) is not None:
            return owner
        parts.pop()
    return None


def _imported(source: Path) -> set[str]:
    """Absolute imports of a file; ``from a import b`` counts as ``a.b`` when b is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                found.add(dotted if dotted in _owners() else node.module)
    return found


@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: str(m.parent.relative_to(ROOT)))
def test_a_member_declares_every_distribution_it_imports(member: Path) -> None:
    project = tomllib.loads(member.read_text())["project"]
    declared = {_name(requirement) for requirement in project.get("dependencies", [])}
    own = _modules(member)
    undeclared: dict[str, set[str]] = {}
    for source in (member.parent / "src").rglob("*.py"):
        for module in _imported(source):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in own or top == "__future__":
                continue
            owner = _owner(module) or f"(not installed) {module}"
            if owner not in declared:
                undeclared.setdefault(owner, set()).add(str(source.relative_to(ROOT)))
    assert not undeclared, f"{member.parent.name} imports undeclared distributions: {undeclared}"
