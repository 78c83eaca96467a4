# syntax=docker/dockerfile:1
# terrain-cli: the operators' command line, `terrain` (migrations, topics, devices, managers).
# docker-compose.yml runs it once as the `migrate` service before the services start:
#   terrain db migrate && terrain topics create
# The build context is the REPOSITORY ROOT (the uv workspace and its lock live there):
#   docker build -f deploy/docker/cli.Dockerfile -t terrain-cli .
# Other commands run in the same image with the compose environment, e.g.:
#   docker compose run --rm migrate terrain devices list

# Both stages must use the same image: the venv's python is a symlink to its interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

# ------------------------------------------------------------------------------ build
FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /uvx /bin/

# Compile bytecode once here (faster start, read-only at run time); copy out of the cache
# mount; use the image's Python, never a downloaded one; build the venv at its final path.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src

# 1. Third-party dependencies only, exactly as locked. This layer is rebuilt only when the
#    lock or a pyproject.toml changes. uv reads every workspace member's pyproject.toml to
#    resolve the workspace, so all of them are copied (tests/contract/test_compose.py checks).
COPY pyproject.toml uv.lock ./
COPY packages/contracts/pyproject.toml packages/contracts/
COPY packages/runtime/pyproject.toml packages/runtime/
COPY packages/cli/pyproject.toml packages/cli/
COPY packages/simulator/pyproject.toml packages/simulator/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/enrich/pyproject.toml services/enrich/
COPY services/notify/pyproject.toml services/notify/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package terrain-cli

# 2. The workspace packages themselves, installed as regular (non-editable) wheels: the
#    venv then holds the code (and package data such as the SQL migrations), and the
#    runtime stage needs nothing from /src.
COPY packages/ packages/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package terrain-cli

# ---------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 terrain \
    && useradd --system --uid 10001 --gid terrain --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin terrain

# The venv stays owned by root: the process cannot modify its own code.
COPY --from=build /app/.venv /app/.venv

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /app
USER 10001:10001

# A one-shot tool: the command is given by whoever runs it (compose: `migrate`).
CMD ["terrain", "--help"]
