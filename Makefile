# The commands the README shows. Every target works from a fresh clone on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: help bootstrap up down demo test lint audit docs

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap:  ## install uv, Python deps and Kafka jars
	@bash scripts/bootstrap.sh

up: bootstrap  ## start Kafka, PostgreSQL, migrations, topics and the three services
	@deploy/local/postgres.sh start
	@deploy/local/kafka.sh start
	@DATABASE_URL="$$(deploy/local/postgres.sh url)" uv run --frozen terrain db migrate
	@uv run --frozen terrain topics create
	@DATABASE_URL="$$(deploy/local/postgres.sh url)" deploy/local/services.sh start

down:  ## stop everything `make up` started
	@deploy/local/services.sh stop
	@deploy/local/kafka.sh stop
	@deploy/local/postgres.sh stop

demo: up  ## the main job: the stack plus a field day through it
	@DATABASE_URL="$$(deploy/local/postgres.sh url)" uv run --frozen terrain demo

test:  ## the whole suite against a real Kafka and PostgreSQL (installs what is missing)
	@bash scripts/test.sh

lint: bootstrap  ## ruff (lint + format), mypy --strict, import contracts (the floors), bandit
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .
	uv run --frozen mypy packages services apps testkit tests bench
	uv run --frozen lint-imports --cache-dir .local/import-linter
	uv run --frozen bandit -q -c pyproject.toml -r packages services apps

audit: bootstrap  ## pip-audit of the locked dependencies (needs PyPI's JSON API or OSV)
	@mkdir -p .local
	uv export --frozen --format requirements-txt --no-emit-workspace -o .local/requirements.txt >/dev/null
	uv run --frozen pip-audit --strict --disable-pip --no-deps -r .local/requirements.txt

docs: bootstrap  ## regenerate JSON Schemas, AsyncAPI and OpenAPI in docs/contracts
	uv run --frozen terrain contracts export

.PHONY: bench
bench: bootstrap  ## benchmarks against raw limits measured in the same run (bench/README.md)
	@DATABASE_URL="$$(deploy/local/postgres.sh url)" uv run --frozen python -m bench.ingest
	@DATABASE_URL="$$(deploy/local/postgres.sh url)" uv run --frozen python -m bench.enrich_store
	@DATABASE_URL="$$(deploy/local/postgres.sh url)" uv run --frozen python -m bench.notify_latency
	@DATABASE_URL="$$(deploy/local/postgres.sh url)" uv run --frozen python -m bench.end_to_end
	@DATABASE_URL="$$(deploy/local/postgres.sh url)" uv run --frozen python -m bench.floor

.PHONY: soak
soak: bootstrap  ## the long versions: 2,000 fuzz cases per operation, fault scenarios with 10x the visits
	@TERRAIN_FUZZ_EXAMPLES=2000 TERRAIN_FAULT_SCALE=10 bash scripts/test.sh tests/integration/test_ingest_fuzz.py tests/e2e/test_hostile_input.py tests/reliability
