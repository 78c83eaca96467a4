"""Hostile input through the whole stack: documents hypothesis builds from the contract's
JSON Schema (tests/e2e/hostile_documents.py), sent as single POSTs and batches to the three
services running as processes; the promises are then checked downstream, in PostgreSQL and
at the managers' webhook, not in ingest's answers alone.

A fixed seed (derandomize) and TERRAIN_FUZZ_EXAMPLES requests (300 in CI; `make soak`
sends thousands). Nothing fails inside the generation loop and nothing is shrunk: every
answer is recorded, every promise checked afterwards, and the figures go to
.local/test-logs/hostile.jsonl for docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from terrain_contracts.markets import Market
from terrain_simulator.simulate import ensure_devices
from terrain_testkit.factories import country_managers, field_submission
from terrain_testkit.privacy import database_text, national_numbers, phone_numbers_in
from terrain_testkit.processes import LOG_DIR, Stack
from terrain_testkit.sinks import WebhookSink
from tests.e2e.hostile_documents import (
    Case,
    poisoned_case,
    resent,
    schema_case,
    utc_now,
    visit_case,
)

EXAMPLES = int(os.environ.get("TERRAIN_FUZZ_EXAMPLES", "300"))
# Markets with a level-1 manager; the others have none, so their urgent complaints must go
# up to the regional director.
STAFFED = [m.value for m in Market][::2]
STORED_WITHIN_S = 60.0
ALERTED_WITHIN_S = 30.0
HALT_WITHIN_S = 15.0

pytestmark = pytest.mark.timeout(240 + EXAMPLES // 2)


@pytest.fixture
def stack_env() -> dict[str, str]:
    # One device per market sends everything: the per-device limit is not under test.
    return {"TERRAIN_RATE_LIMIT_PER_MINUTE": "1000000", "TERRAIN_RATE_LIMIT_BURST": "1000000"}


@dataclass
class Answer:
    """What ingest said about one document."""

    case: Case
    status: int  # the HTTP status, or the batch item's 200/422
    accepted: bool
    errors: list[dict[str, Any]]
    path: str  # where its field names start: "" or "submissions.N"
    problem: str = ""  # why the answer itself breaks a promise


@dataclass
class Run:
    answers: list[Answer] = field(default_factory=list)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    accepted_visits: list[Case] = field(default_factory=list)


def _errors_of(response: httpx.Response) -> tuple[list[dict[str, Any]], str]:
    try:
        body = response.json()
    except ValueError:
        return [], f"HTTP {response.status_code} is not JSON: {response.text[:120]!r}"
    errors = body.get("errors") if isinstance(body, dict) else None
    return (errors if isinstance(errors, list) else []), ""


def _names_a_field(errors: list[dict[str, Any]], prefix: str) -> str:
    """'' if every error names a field (under ``prefix`` for a batch item), else why not."""
    if not errors:
        return "no errors[] in the refusal"
    for error in errors:
        name = error.get("field") if isinstance(error, dict) else None
        if not isinstance(name, str) or not name or name == "(body)":
            return f"an error names no field: {error!r}"[:200]
        if prefix and not name.startswith(prefix):
            return f"a batch item's error is not under {prefix}: {name!r}"[:200]
    return ""


def send_cases(stack: Stack, tokens: dict[str, str], run: Run) -> None:
    """Draw and send EXAMPLES requests (hypothesis, fixed seed), recording every answer."""
    client = httpx.Client(base_url=stack.ingest_url, timeout=30)

    def token(case: Case) -> str:
        document = case.document if isinstance(case.document, dict) else {}
        agent = document.get("agent")
        market = agent.get("market") if isinstance(agent, dict) else None
        return tokens.get(market if isinstance(market, str) else "", tokens["SN"])

    def draw_case(data: st.DataObject) -> Case:
        # The same draws whatever was accepted before: hypothesis replays choice sequences.
        kind = data.draw(st.sampled_from(("schema", "poisoned", "poisoned", "visit", "resend")))
        if kind == "schema":
            return data.draw(schema_case())
        if kind == "poisoned":
            return data.draw(poisoned_case(utc_now()))
        visit = data.draw(visit_case(utc_now()))
        if kind == "visit":
            return visit
        pick = data.draw(st.integers(0, 10**6))
        later, newer_app = data.draw(st.integers(1, 3600)), data.draw(st.booleans())
        if not run.accepted_visits:
            return visit
        original = run.accepted_visits[pick % len(run.accepted_visits)]
        return resent(original, seconds_later=later, newer_app=newer_app)

    def post(path: str, body: bytes, case: Case) -> httpx.Response | None:
        run.requests += 1
        try:
            response = client.post(
                path,
                content=body,
                headers={"authorization": f"Bearer {token(case)}",
                         "content-type": "application/json"},
            )  # fmt: skip
        except httpx.HTTPError as error:
            run.server_errors.append(f"{path}: {type(error).__name__}: {error}"[:200])
            return None
        run.statuses[response.status_code] += 1
        if response.status_code >= 500:
            run.server_errors.append(
                f"{path} ({case.kind} first): HTTP {response.status_code}"
                f" {response.text[:120]!r} for {body[:200]!r}"
            )
        return response

    def single(case: Case) -> None:
        response = post("/v1/submissions", case.body, case)
        if response is None or response.status_code >= 500:
            return
        accepted = 200 <= response.status_code < 300
        errors, problem = ([], "") if accepted else _errors_of(response)
        # A body too large is refused before it is read: no field to name.
        if not accepted and response.status_code != 413 and not problem:
            problem = _names_a_field(errors, "")
        run.answers.append(Answer(case, response.status_code, accepted, errors, "", problem))
        if accepted and case.kind == "visit":
            run.accepted_visits.append(case)

    def batch(cases: list[Case]) -> None:
        body = b'{"submissions":[' + b",".join(c.body for c in cases) + b"]}"
        response = post("/v1/submissions/batch", body, cases[0])
        if response is None or response.status_code >= 500:
            return
        if response.status_code != 200:
            errors, problem = _errors_of(response)
            if response.status_code != 413 and not problem:
                problem = _names_a_field(errors, "submissions")
            for case in cases:
                run.answers.append(Answer(case, response.status_code, False, errors, "", problem))
            return
        results = response.json()["results"]
        for index, (case, result) in enumerate(zip(cases, results, strict=True)):
            accepted = result["status"] == "accepted"
            errors = result.get("errors") or []
            prefix = f"submissions.{index}"
            problem = "" if accepted else _names_a_field(errors, prefix)
            run.answers.append(Answer(case, 200 if accepted else 422, accepted, errors, prefix,
                                      problem))  # fmt: skip
            if accepted and case.kind == "visit":
                run.accepted_visits.append(case)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        if data.draw(st.integers(0, 3)) == 0:
            batch([draw_case(data) for _ in range(data.draw(st.integers(2, 6)))])
        else:
            single(draw_case(data))

    try:
        one_request()
    finally:
        client.close()


def _accepted_ids(run: Run, kind: str | None = None) -> list[str]:
    return sorted({
        a.case.submission_id for a in run.answers
        if a.accepted and a.case.submission_id and kind in (None, a.case.kind)
    })  # fmt: skip


async def _ids_in(connection: asyncpg.Connection, sql: str, ids: list[str]) -> set[str]:
    return {str(r[0]) for r in await connection.fetch(sql, ids)}


async def test_hostile_documents_keep_every_promise_downstream(
    stack: Stack, database_url: str
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        devices = await ensure_devices(connection, "hostile input")
    finally:
        await connection.close()
    tokens = {market.value: found[0] for market, found in devices.items()}
    run = Run()
    with WebhookSink() as sink:
        async with country_managers(database_url, sink, markets=STAFFED, director=True):
            await asyncio.to_thread(send_cases, stack, tokens, run)
            figures = await check_downstream(stack, database_url, run, sink, tokens)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / "hostile.jsonl").open("a") as out:
        out.write(json.dumps(figures) + "\n")
    print("hostile input:", json.dumps(figures))
    problems = figures.pop("problems")
    assert not problems, json.dumps(figures) + "\n" + "\n".join(problems[:25])


async def check_downstream(
    stack: Stack, database_url: str, run: Run, sink: WebhookSink, tokens: dict[str, str]
) -> dict[str, Any]:
    problems: list[str] = [f"5xx or no answer: {e}" for e in run.server_errors[:10]]
    problems += [
        f"{a.case.kind} answered {a.status}: {a.problem}" for a in run.answers if a.problem
    ]
    problems += [
        f"a storable visit was refused ({a.status}): {a.errors[:3]}"
        for a in run.answers
        if a.case.kind in ("visit", "resend") and not a.accepted
    ]
    accepted = _accepted_ids(run)
    visits = _accepted_ids(run, "visit")
    resent_ids = _accepted_ids(run, "resend")
    stored_sql = "SELECT submission_id FROM terrain.submissions WHERE submission_id = ANY($1)"
    failed_sql = """SELECT DISTINCT submission_id FROM terrain.failed_submissions
                    WHERE submission_id = ANY($1) AND reason <> ''"""
    connection = await asyncpg.connect(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + STORED_WITHIN_S
        while True:
            stored = await _ids_in(connection, stored_sql, accepted)
            failed = await _ids_in(connection, failed_sql, accepted)
            if len(stored | failed) >= len(accepted):
                break
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        lost = [i for i in accepted if i not in stored and i not in failed]
        if lost:
            problems.append(f"{len(lost)} answered 2xx, neither stored nor failed within "
                            f"{STORED_WITHIN_S:.0f} s: {lost[:5]}")  # fmt: skip
        not_stored = [i for i in visits if i not in stored]
        if not_stored:
            problems.append(f"{len(not_stored)} storable visits not stored: {not_stored[:5]}")
        conflicts = await _ids_in(
            connection,
            "SELECT DISTINCT submission_id FROM terrain.failed_submissions"
            " WHERE reason = 'conflict' AND submission_id = ANY($1)",
            resent_ids,
        )
        if conflicts:
            problems.append(f"{len(conflicts)} resends filed as conflicts: {sorted(conflicts)[:5]}")
        urgent = [
            a.case.submission_id
            for a in run.answers
            if a.accepted
            and a.case.submission_id in stored
            and isinstance(a.case.document.get("feedback"), dict)
            and a.case.document["feedback"].get("urgent") is True
        ]
        halted = await _halted(stack, connection, tokens)
    finally:
        await connection.close()
    if halted:
        problems.append(halted)

    # At the receiver: every urgent complaint reached a manager (the market's, or the
    # regional director for the markets without one).
    urgent_set = set(urgent)
    deadline = asyncio.get_running_loop().time() + ALERTED_WITHIN_S
    while True:
        alerted = {b.get("submission_id") for b in sink.bodies()}
        if urgent_set <= alerted or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    silent = sorted(urgent_set - alerted)
    if silent:
        problems.append(f"{len(silent)} urgent complaints reached nobody: {silent[:5]}")

    numbers = national_numbers({n: m for a in run.answers if a.accepted
                                for n, m in a.case.numbers.items()})  # fmt: skip
    leaked = {
        where: phone_numbers_in(text, numbers)
        for where, text in (await database_text(database_url)).items()
    }
    in_clear = set().union(*leaked.values()) if leaked else set()
    if in_clear:
        columns = sorted(where for where, found in leaked.items() if found)
        problems.append(f"{len(in_clear)} phone numbers of verbatims in clear in {columns}")

    kinds = Counter(a.case.kind for a in run.answers)
    bodies = [a.case.body for a in run.answers]
    return {
        "examples": EXAMPLES,
        "requests": run.requests,
        "documents": len(run.answers),
        "kinds": dict(kinds),
        "with_nul": sum(b"\\u0000" in b for b in bodies),
        "with_lone_surrogate": sum(b"\\ud8" in b or b"\\udc" in b or b"\\udf" in b for b in bodies),
        "with_1e400": sum(b"1e400" in b for b in bodies),
        "http": dict(sorted(run.statuses.items())),
        "accepted": len(accepted),
        "stored": len(stored),
        "failed_with_reason": len(failed - stored),
        "server_errors_5xx": sum(n for s, n in run.statuses.items() if s >= 500),
        "refusals_naming_no_field": sum(1 for a in run.answers if a.problem),
        "lost": len(lost),
        "pipeline_halts": int(bool(halted)),
        "false_conflicts": len(conflicts),
        "numbers_in_clear": len(in_clear),
        "urgent": len(urgent),
        "silent_urgent": len(silent),
        "problems": problems,
    }


async def _halted(stack: Stack, connection: asyncpg.Connection, tokens: dict[str, str]) -> str:
    """'' if a valid visit sent after all the others is stored within seconds."""
    document = field_submission()
    async with httpx.AsyncClient(base_url=stack.ingest_url, timeout=15) as client:
        response = await client.post(
            "/v1/submissions",
            json=document,
            headers={"authorization": f"Bearer {tokens[document['agent']['market']]}"},
        )
    if response.status_code != 202:
        return f"a valid visit sent last was answered {response.status_code}"
    deadline = asyncio.get_running_loop().time() + HALT_WITHIN_S
    while asyncio.get_running_loop().time() < deadline:
        if await connection.fetchval(
            "SELECT count(*) FROM terrain.submissions WHERE submission_id = $1",
            UUID(document["submission_id"]),
        ):
            return ""
        await asyncio.sleep(0.2)
    return f"the pipeline halted: a valid visit sent last was not stored in {HALT_WITHIN_S:.0f} s"
