"""`terrain-ingest`: run the ingest API with uvicorn, in one process or several."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

import uvicorn

from ingest import SERVICE
from ingest.settings import IngestSettings
from terrain_runtime.metrics import MULTIPROCESS_DIR_ENV
from terrain_runtime.telemetry import setup_logging

if TYPE_CHECKING:
    from fastapi import FastAPI


def worker_app() -> FastAPI:
    """The app of one server process (uvicorn's factory when there are several)."""
    # Imported here, not at the top: the supervisor of several workers never builds an
    # app, so it stays a small process (tens of MB instead of a worker's hundred).
    from ingest.app import create_app

    settings = IngestSettings()
    setup_logging(settings, SERVICE)
    return create_app(settings)


def main() -> None:
    settings = IngestSettings()
    setup_logging(settings, SERVICE)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,  # keep our JSON logging
        "access_log": False,  # request lines carry nothing an SRE needs that metrics/traces lack
        "timeout_graceful_shutdown": 20,
    }
    if settings.workers == 1:
        from ingest.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    # Python runs one core per process: several processes share the listening socket (the
    # kernel spreads connections), uvicorn restarts one that dies, and /metrics sums
    # theirs through files in a directory of this run's own (workers inherit the variable).
    with tempfile.TemporaryDirectory(prefix="terrain-ingest-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR_ENV] = directory
        uvicorn.run("ingest.__main__:worker_app", factory=True, workers=settings.workers, **options)


if __name__ == "__main__":
    main()
