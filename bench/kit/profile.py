"""Where a service's CPU goes, stage by stage: py-spy's raw stacks (``--format raw
--full-filenames``: one line per distinct stack, root first, and how many samples it had)
folded into the pipeline's stages, in µs of CPU per visit.

A stage is named by frames: a path (``"enrich/geo.py"``, a package ``"opentelemetry/"``),
optionally one function in it (``"enrich/logic.py:decode"``). A frame belongs to the first
stage of the service's list that names it. A sample belongs to one stage (its ``self``
time), so the shares sum to 100 % and, scaled to the process's CPU per visit measured from
``/proc``, to that figure:

- the stage of its innermost frame among the stages' ``frames``;
- else the innermost among their ``fallback`` frames: the event loop every stack starts
  in, a library's callbacks run from it (asyncpg's, aiokafka's connections);
- else "other".

A frame of a library shared by several stages (aiokafka's connections under the fetcher
and the sender, asyncpg under the store and the CRM lookup, pydantic, the record codec)
is a ``fallback`` or named by no stage, so its time goes to the stage that called it.
``wrappers`` (instrumentation around a call: OpenTelemetry's asyncpg and FastStream
middlewares) take only their own time, as a sample's innermost frame: what they wrap goes
to its caller's stage. A stage's ``inclusive`` time is every sample with one of its
``frames`` anywhere.

Garbage collection has no frame of its own in py-spy: it is charged to the stage whose
allocation triggered it. Keep this mapping up to date when a service's modules change: the
tables print the largest frames left to the fallbacks and "other".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from bench.kit.pyspy import RATE_HZ, Recording

OTHER = "other"

Kind = Literal["frames", "fallback", "wrappers"]


@dataclass(frozen=True)
class Stage:
    """A step of a service's pipeline, by the frames that do it (see the module's doc)."""

    name: str
    frames: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    wrappers: tuple[str, ...] = ()


TRACING = Stage(
    "tracing",
    ("opentelemetry/", "terrain_runtime/tracing.py", "terrain_runtime/sampling.py"),
    wrappers=("opentelemetry/instrumentation/", "faststream/opentelemetry/"),
)
METRICS = Stage("metrics", ("prometheus_client/", "terrain_runtime/metrics.py"))
LOGGING = Stage("logging", ("logging/", "structlog/", "terrain_runtime/telemetry.py"))
EVENT_LOOP = Stage(
    "event loop (asyncio, uvloop's own C work, idle threads)",
    fallback=("asyncio/", "uvloop/", "selectors.py", "threading.py"),
)
SENDER = Stage("aiokafka sender", ("aiokafka/producer/sender.py",))
CONNECTIONS = Stage(
    "aiokafka connections (responses read)",
    fallback=("aiokafka/conn.py", "aiokafka/client.py", "aiokafka/protocol/"),
)
CONSUME = Stage(
    "consume/fetch (aiokafka, FastStream, commit)",
    ("aiokafka/consumer/", "faststream/", "fast_depends/", "terrain_runtime/kafka.py"),
)
_PRODUCER = (
    "terrain_runtime/producer.py",
    "aiokafka/producer/producer.py",
    "aiokafka/producer/message_accumulator.py",
)
# The runtime's steps around a service's store (retries, bisecting a refused batch).
_STORE_RETRIED = (
    "terrain_runtime/pipeline.py:store_isolated",
    "terrain_runtime/pipeline.py:_store_with_retry",
    "terrain_runtime/dlq.py:store_failures",
)
DRIVER = Stage("asyncpg outside a stage (pool resets, callbacks)", fallback=("asyncpg/",))

# fmt: off
STAGES: dict[str, tuple[Stage, ...]] = {
    "ingest": (
        Stage(TRACING.name, (*TRACING.frames, "ingest/routes.py:_submission_span"),
              wrappers=TRACING.wrappers),
        METRICS,
        LOGGING,
        Stage("route and answer (results, JSON response)", (
            "ingest/routes.py:post_batch", "ingest/routes.py:post_submission",
            "starlette/responses.py", "fastapi/responses.py",
        )),
        Stage("screening", ("ingest/screening.py",)),
        Stage("read body (JSON parse)", (
            "ingest/body.py:read_json", "ingest/body.py:_parse", "ingest/body.py:_decode",
            "ingest/body.py:_parse_int",
        )),
        Stage("validation", ("ingest/logic.py:validate", "ingest/logic.py:field_errors")),
        Stage("pseudonym (numbers, redaction)", (
            "ingest/logic.py:pseudonymise", "terrain_runtime/privacy.py", "phonenumbers/",
        )),
        Stage("envelope (build, dump)", ("ingest/logic.py:receive", "ingest/routes.py:_record")),
        Stage("produce (batch, acks=all)", (*_PRODUCER, "ingest/routes.py:publish")),
        SENDER,
        CONNECTIONS,
        Stage("HTTP server (uvicorn, Starlette, middlewares, auth)", (
            "uvicorn/protocols/", "h11/", "httptools/", "starlette/", "fastapi/", "anyio/",
            "ingest/body.py", "ingest/door.py", "ingest/overload.py", "ingest/problems.py",
            "ingest/observability.py", "ingest/devices.py", "ingest/routes.py:authenticate",
            "ingest/ratelimit.py",
        ), fallback=("uvicorn/",)),
        EVENT_LOOP,
    ),
    "enrich": (
        Stage(TRACING.name, (
            *TRACING.frames, "enrich/stages.py:_submission_spans", "enrich/stages.py:_end_spans",
        ), wrappers=TRACING.wrappers),
        METRICS,
        LOGGING,
        Stage("decode", (
            "enrich/logic.py:decode", "enrich/logic.py:_not_json",
            "terrain_runtime/pipeline.py:decode_envelope", "terrain_contracts/messages.py",
        )),
        Stage("segments (CRM lookup)", (
            "enrich/stages.py:_segment_histories", "enrich/segments.py",
            "enrich/repository.py:fetch_segment_histories",
        )),
        Stage("process (geo, language, signals, hash)", (
            "enrich/logic.py", "enrich/geo.py", "enrich/text.py", "enrich/lexicon.py",
            "enrich/stages.py:_enrich", "h3/", "timezonefinder/",
        )),
        Stage("store (one statement a batch)", (
            "enrich/repository.py", "enrich/stages.py:_store", *_STORE_RETRIED,
        )),
        Stage("publish (enriched records)", (
            *_PRODUCER, "enrich/stages.py:_publish", "terrain_runtime/pipeline.py:publish",
        )),
        SENDER,
        CONSUME,
        CONNECTIONS,
        DRIVER,
        EVENT_LOOP,
    ),
    "notify": (
        TRACING,
        METRICS,
        LOGGING,
        Stage("decode (slim facts)", (
            "notify/stages.py:decode", "notify/stages.py:_decode_whole", "notify/facts.py",
            "terrain_runtime/pipeline.py:decode_envelope", "terrain_contracts/messages.py",
        )),
        Stage("decide (rules)", (
            "notify/stages.py:decide_alerts", "notify/stages.py:alert_payload",
            "notify/deciding.py", "notify/rules.py", "notify/routing.py:plan_routes",
        )),
        # The sender's own queries (claims, deliveries) go to the sender: outbox.py is its
        # caller's.
        Stage("store (outbox)", ("notify/stages.py:write_outbox", *_STORE_RETRIED),
              fallback=("notify/outbox.py", "notify/routing.py")),
        Stage("deliver (outbox sender, webhooks)", (
            "notify/sender.py", "notify/channels.py", "notify/wording.py", "notify/links.py",
            "httpx/", "httpcore/",
        )),
        Stage("publish (dead letters)", (*_PRODUCER, "terrain_runtime/pipeline.py:publish")),
        SENDER,
        CONSUME,
        CONNECTIONS,
        Stage("web pages (acknowledgements)", ("uvicorn/", "starlette/", "notify/web.py")),
        DRIVER,
        EVENT_LOOP,
    ),
}
# fmt: on

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")


def _frame(text: str) -> tuple[str, str]:
    """(path with a leading slash, function) of one raw frame, ``name (path:line)``."""
    found = _FRAME.match(text)
    if found is None:
        return "", text
    return "/" + found["path"].lstrip("/"), found["function"]


def _matches(pattern: str, path: str, function: str) -> bool:
    """py-spy names a method by its class too (``Gazetteer.nearest``): a pattern may
    name the method alone."""
    where, _, name = pattern.partition(":")
    return ("/" + where) in path and (not name or function == name or function.endswith("." + name))


@dataclass
class Profile:
    """The samples of one service's processes, counted by stage."""

    service: str
    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)  # each sample once: self time
    inclusive: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)  # innermost frames of OTHER
    processes: int = 0

    @property
    def stages(self) -> list[str]:
        """The stages in the mapping's order, then "other"."""
        return [stage.name for stage in STAGES.get(self.service, ())] + [OTHER]


def fold(service: str, lines: Iterable[str], profile: Profile | None = None) -> Profile:
    """Add py-spy's raw lines of one of ``service``'s processes to ``profile``."""
    profile = profile or Profile(service)
    profile.processes += 1
    stages = STAGES.get(service, ())
    memo: dict[str, tuple[str, Kind] | None] = {}

    def stage_of(frame: str) -> tuple[str, Kind] | None:
        if frame not in memo:
            path, function = _frame(frame)
            memo[frame] = next(
                (
                    (stage.name, kind)
                    for stage in stages
                    for kind in ("wrappers", "frames", "fallback")
                    if any(_matches(p, path, function) for p in getattr(stage, kind))
                ),
                None,
            )
        return memo[frame]

    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        found = [stage_of(frame) for frame in frames]
        leaf = found[-1]
        wrapped = leaf is not None and leaf[1] == "wrappers"
        own = leaf[0] if leaf is not None and wrapped else None
        for kind in ("frames", "fallback"):
            own = own or next((f[0] for f in reversed(found) if f and f[1] == kind), None)
        claimed = {f[0] for f in found if f and f[1] == "frames"}
        profile.samples += count
        profile.own[own or OTHER] += count
        if own not in claimed and not wrapped:  # a fallback's or nobody's: what to map
            path, function = _frame(frames[-1])
            profile.unmapped[f"{function} ({'/'.join(path.split('/')[-2:])})"] += count
        for name in claimed | {own or OTHER}:
            profile.inclusive[name] += count
    return profile


def table(profile: Profile, cpu_s: float, us_per_visit: float, rate_hz: int) -> list[str]:
    """The stages of ``profile`` in µs of CPU per visit (``us_per_visit``: the process's,
    from /proc), self and inclusive; then how much of ``cpu_s`` the samples covered and
    the largest frames no stage claims."""
    lines = [
        f"**{profile.service}**: {us_per_visit:,.0f} µs CPU per visit",
        "",
        "| stage | self, µs per visit | self share | inclusive, µs per visit | inclusive share |",
        "|---|---:|---:|---:|---:|",
    ]
    total = max(profile.samples, 1)
    for name in profile.stages:
        own, inclusive = profile.own[name] / total, profile.inclusive[name] / total
        lines.append(
            f"| {name} | {own * us_per_visit:,.0f} | {own:.0%} | "
            + (f"{inclusive * us_per_visit:,.0f} | {inclusive:.0%} |" if name != OTHER else " | |")
        )
    sampled_s = profile.samples / rate_hz
    lines += [
        f"| all | {us_per_visit:,.0f} | 100% | | |",
        "",
        f"{profile.samples:,} samples at {rate_hz} Hz from {profile.processes} process(es): "
        f"{sampled_s:,.1f} s running or runnable, for {cpu_s:,.1f} s of CPU in /proc "
        f"({sampled_s / cpu_s if cpu_s else 0:.0%}: over 100 % when the process waited for "
        "a core); the shares are scaled to /proc's figure.",
    ]
    if profile.unmapped:
        largest = ", ".join(
            f"`{frame}` {count / total * us_per_visit:,.1f} µs"
            for frame, count in profile.unmapped.most_common(5)
        )
        lines.append(f"Largest innermost frames outside every stage's own frames: {largest}.")
    return lines


def report(
    recording: Recording, cpu_s: dict[str, float], us_per_visit: dict[str, float], window: str
) -> list[str]:
    """A table per service ``recording`` sampled, by the CPU seconds and µs per visit
    /proc measured for each (``cpu_s``, ``us_per_visit``, by service name) over the same
    ``window`` (said in the heading)."""
    lines = [
        f"### Profile: py-spy at {RATE_HZ} Hz on every service process {window} "
        f"(py-spy's own CPU {recording.cpu_s:,.1f} s, in no table); raw stacks in "
        f"{recording.directory}",
    ]
    for service, paths in recording.files.items():
        profile = Profile(service)
        for path in paths:
            with path.open(encoding="utf-8", errors="replace") as raw:
                fold(service, raw, profile)
        lines += ["", *table(profile, cpu_s[service], us_per_visit[service], RATE_HZ)]
    return lines + [f"- {problem}" for problem in recording.problems]
