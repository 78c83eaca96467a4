"""A Dockerfile read as the contract tests need it: instructions, stages and build arguments.

Enough of the Dockerfile syntax for deploy/docker/Dockerfile, not a full parser: continuation
lines are joined, comments (and parser directives) dropped, and build arguments substituted
(``$NAME`` and ``${NAME}``) where Docker substitutes them, plus in RUN, where the shell does.
The image a build produces is its last stage, after the stages it is built FROM: a stage
named in FROM (``FROM runtime AS ingest``, ``FROM ${SERVICE}``) passes on its instructions.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Instructions whose arguments Docker substitutes build arguments in; RUN's shell does too.
# CMD, ENTRYPOINT and HEALTHCHECK in exec form are left as written, as Docker leaves them.
SUBSTITUTED = {
    "ADD",
    "COPY",
    "ENV",
    "EXPOSE",
    "FROM",
    "LABEL",
    "ONBUILD",
    "RUN",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}
VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass(frozen=True)
class Stage:
    """One FROM and what follows it; ``base`` is the image or stage it starts from."""

    base: str
    name: str  # "" for an unnamed stage
    instructions: tuple[Instruction, ...]  # the FROM first


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    stages: tuple[Stage, ...]

    @property
    def instructions(self) -> tuple[Instruction, ...]:
        """Every instruction of every stage, in file order."""
        return tuple(i for stage in self.stages for i in stage.instructions)

    def final_stage(self) -> list[Instruction]:
        """The instructions that make the image: the last stage after those it is built on."""
        assert self.stages, f"{self.path}: no FROM"
        by_name = {stage.name: stage for stage in self.stages if stage.name}
        chain = [self.stages[-1]]
        while chain[0].base in by_name:
            parent = by_name[chain[0].base]
            assert parent not in chain, f"{self.path}: stage {parent.name} is built on itself"
            chain.insert(0, parent)
        return [instruction for stage in chain for instruction in stage.instructions]

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


def read_instructions(path: Path) -> list[Instruction]:
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
    return instructions


def declared(arg: str, given: Mapping[str, str], inherited: Mapping[str, str]) -> tuple[str, str]:
    """An `ARG NAME[=default]`: its name and value (the build's, else its default)."""
    name, has_default, default = arg.partition("=")
    fallback = default if has_default else inherited.get(name, "")
    return name, given.get(name, fallback)


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Build arguments in scope replaced; any other variable left for the shell or ENV."""

    def replace(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        return variables[name] if name in variables else match.group(0)

    return VARIABLE.sub(replace, text)


def parse_dockerfile(path: Path, build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """The file's stages, for a build given ``build_args`` (``--build-arg``, compose's args)."""
    given = dict(build_args or {})
    global_args: dict[str, str] = {}  # ARGs before the first FROM: usable in FROM lines
    stages: list[Stage] = []
    scope: dict[str, str] = {}
    current: list[Instruction] = []
    base = name = ""
    for instruction in read_instructions(path):
        if instruction.keyword == "ARG" and not stages and not current:
            key, value = declared(instruction.args, given, {})
            global_args[key] = value
            continue
        if instruction.keyword == "FROM":
            if current:
                stages.append(Stage(base, name, tuple(current)))
            words = substitute(instruction.args, global_args).split()
            words = [w for w in words if not w.startswith("--")]  # --platform=...
            assert words and words[0], f"{path}: FROM {instruction.args} names no image"
            base = words[0]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            scope = {}
            current = [Instruction("FROM", " ".join(words))]
            continue
        assert current, f"{path}: {instruction.keyword} before the first FROM"
        if instruction.keyword == "ARG":
            key, value = declared(instruction.args, given, global_args)
            scope[key] = value
        elif instruction.keyword in SUBSTITUTED:
            instruction = Instruction(instruction.keyword, substitute(instruction.args, scope))
        current.append(instruction)
    if current:
        stages.append(Stage(base, name, tuple(current)))
    return Dockerfile(path, tuple(stages))
