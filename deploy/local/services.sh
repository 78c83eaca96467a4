#!/usr/bin/env bash
# Run Terrain's three services as background processes: start | stop | status.
# Logs in .local/logs/<service>.log, pids in .local/run/<service>.pid.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
state="${TERRAIN_STATE_DIR:-$root/.local}"
mkdir -p "$state/logs" "$state/run"
services=(ingest enrich notify)

running() { [[ -f "$state/run/$1.pid" ]] && kill -0 "$(cat "$state/run/$1.pid")" 2>/dev/null; }

start() {
  for service in "${services[@]}"; do
    if running "$service"; then echo "$service: already running"; continue; fi
    # The venv's entry point directly (make up synced it): the pid we record is the
    # service itself, and setsid makes it a group leader we can stop as a whole.
    (cd "$root" && exec setsid "$root/.venv/bin/terrain-$service" \
      >>"$state/logs/$service.log" 2>&1 </dev/null) &
    echo $! >"$state/run/$service.pid"
    echo "$service: started (log: $state/logs/$service.log)"
  done
  local url="http://${TERRAIN_INGEST_HOST:-127.0.0.1}:${TERRAIN_INGEST_PORT:-8000}/readyz"
  for _ in $(seq 1 120); do
    if curl -fsS "$url" >/dev/null 2>&1; then echo "ingest: ready at ${url%/readyz}"; return 0; fi
    sleep 0.5
  done
  echo "ingest did not become ready; last log lines:" >&2
  tail -n 40 "$state/logs/ingest.log" >&2
  return 1
}

stop() {
  for service in "${services[@]}"; do
    if running "$service"; then
      local pid; pid="$(cat "$state/run/$service.pid")"
            kill -TERM "$pid" 2>/dev/null || true
      # Graceful: in-flight requests and batches finish (up to 30 s), then no mercy.
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      echo "$service: stopped"
    fi
    rm -f "$state/run/$service.pid"
  done
}

status() {
  local rc=0
  for service in "${services[@]}"; do
    if running "$service"; then echo "$service: running"; else echo "$service: stopped"; rc=1; fi
  done
  return "$rc"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
