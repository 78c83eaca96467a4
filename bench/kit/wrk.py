"""The compiled load generator: ``wrk`` (Debian's package), sending the same pre-built
request bytes as ``bench.kit.load``, with fresh ids stamped on every pass by a Lua script.

For the rates where the Python client's CPU would pass a tenth of the machine's (single
POSTs at thousands a second): wrk is C with LuaJIT, an event loop per thread. Closed loop
only (wrk has no open loop; ``bench.kit.load`` keeps that). Its CPU is read from the
kernel's accounting of the child once it exits.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.kit.load import ID_SLOT, Outcome, Request

# Each wrk thread (its own Lua state) reads every request, stamps 2 hex digits of its
# thread and 6 of its pass over them at ID_SLOT, and counts what the answers accepted. A
# ``response`` callback makes wrk hand every answer to Lua, which costs: it is left out
# when no request is a batch (every 2xx is then one submission, from wrk's own summary).
SCRIPT = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  requests = {}
  for line in io.lines(args[1]) do
    local path, token, body = line:match("^(%S+)\t(%S+)\t(.*)$")
    table.insert(requests, {path, {["Authorization"] = "Bearer " .. token,
                                   ["Content-Type"] = "application/json"}, body})
  end
  n, pass, accepted, ok, statuses = 0, 0, 0, 0, {}
  stamp = string.format("%02x%06x", id, pass)
end
function request()
  n = n + 1
  if n > #requests then
    n, pass = 1, pass + 1
    stamp = string.format("%02x%06x", id, pass)
  end
  local r = requests[n]
  return wrk.format("POST", r[1], r[2], (r[3]:gsub("SLOT", stamp)))
end
"""
RESPONSE = r"""
function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
    local found = body:match('"accepted":%s*(%d+)')
    accepted = accepted + (found and tonumber(found) or 1)
  else
    statuses[status] = (statuses[status] or 0) + 1
  end
end
"""
DONE = r"""
function done(summary, latency, requests)
  io.write(string.format("SUMMARY %d\n", summary.requests))
  for _, t in ipairs(response and threads or {}) do
    local counts = ""
    for status, count in pairs(t:get("statuses")) do
      counts = counts .. " " .. status .. ":" .. count
    end
    io.write(string.format("THREAD %d %d%s\n", t:get("accepted"), t:get("ok"), counts))
  end
  io.write(string.format("ERRORS %d %d %d %d %d\n", summary.errors.connect,
           summary.errors.read, summary.errors.write, summary.errors.status,
           summary.errors.timeout))
end
"""


def available() -> bool:
    """Whether wrk is installed (``apt-get install wrk``)."""
    return shutil.which("wrk") is not None


def _lines(requests: list[Request]) -> str:
    """path, token and body of each request, tab-separated, one a line (JSON escapes tabs
    and newlines inside strings, so neither occurs in a body)."""
    lines = []
    for head, body in requests:
        text = head.decode()
        path = text.split(" ", 2)[1]
        token = re.search(r"Authorization: Bearer (\S+)", text)
        assert token is not None, "every bench request carries its device's token"
        lines.append(f"{path}\t{token.group(1)}\t{body.decode()}")
    return "\n".join(lines) + "\n"


def run_wrk(
    port: int, requests: list[Request], duration_s: float, threads: int, connections: int
) -> Outcome:
    """``requests`` cycled by wrk for ``duration_s``, closed loop, ``connections`` in all
    over ``threads`` threads; what it saw, and its CPU."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        script, bodies = Path(directory, "bench.lua"), Path(directory, "requests.tsv")
        batches = any(head.startswith(b"POST /v1/submissions/batch ") for head, _ in requests)
        script.write_text(
            (SCRIPT + (RESPONSE if batches else "") + DONE).replace("SLOT", ID_SLOT.decode())
        )
        bodies.write_text(_lines(requests), encoding="utf-8")
        command = [
            "wrk", "-t", str(threads), "-c", str(max(connections, threads)),
            "-d", f"{max(1, round(duration_s))}s", "--timeout", "30s", "-s", str(script),
            f"http://127.0.0.1:{port}", "--", str(bodies),
        ]  # fmt: skip
        started = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            report = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{report}")
    outcome = Outcome(elapsed_s=time.perf_counter() - started)
    outcome.cpu_s = usage.ru_utime + usage.ru_stime
    answered = 0
    for line in report.splitlines():
        if line.startswith("SUMMARY "):
            answered = int(line.split()[1])
        elif line.startswith("THREAD "):
            accepted, ok, *statuses = line.split()[1:]
            outcome.submissions += int(accepted)
            outcome.requests_2xx += int(ok)
            for pair in statuses:
                code, count = map(int, pair.split(":"))
                outcome.non_2xx[code] = outcome.non_2xx.get(code, 0) + count
        elif line.startswith("ERRORS "):
            names = ("connect", "read", "write", "status", "timeout")
            errors = dict(zip(names, map(int, line.split()[1:]), strict=True))
            status = errors.pop("status")  # non-2xx: by code above, when answers are read
            outcome.errors.update({name: count for name, count in errors.items() if count})
            if not batches:
                outcome.requests_2xx = outcome.submissions = answered - status
                if status:
                    outcome.errors["non-2xx"] = status
    outcome.sent = outcome.requests_2xx + sum(outcome.non_2xx.values())
    return outcome
