#!/usr/bin/env bash
# `make test`: from nothing to the whole suite against a real Kafka broker and a real
# PostgreSQL server. Stops afterwards whatever it had to start, so it leaves the machine
# as it found it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

started=()
cleanup() {
  for service in "${started[@]}"; do deploy/local/"$service".sh stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
for service in postgres kafka; do
  if ! deploy/local/"$service".sh status >/dev/null 2>&1; then
    deploy/local/"$service".sh start
    started+=("$service")
  fi
done

DATABASE_URL="$(deploy/local/postgres.sh url)"
export DATABASE_URL
export TERRAIN_ENVIRONMENT=test
uv run --frozen pytest "$@"
