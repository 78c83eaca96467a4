"""`terrain-ingest`: run the ingest API with uvicorn, in one process or several."""

from __future__ import annotations

import gc
import multiprocessing
import os
import tempfile
from typing import TYPE_CHECKING, Any

import uvicorn
import uvicorn._subprocess

from ingest import SERVICE
from ingest.settings import IngestSettings
from ingest.wire import JoinedWritesProtocol
from terrain_runtime.telemetry import setup_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

# prometheus_client's own variable (terrain_runtime.metrics.MULTIPROCESS_DIR_ENV), named
# here because prometheus_client reads it once, when first imported: it must be set
# before anything imports terrain_runtime.metrics.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def worker_app() -> FastAPI:
    """The app of one server process (uvicorn's factory when there are several)."""
    from ingest.app import create_app

    settings = IngestSettings()
    setup_logging(settings, SERVICE)
    return create_app(settings)


def _fork_workers() -> None:
    """Workers forked from a supervisor that has imported the app's code, not spawned.

    A spawned worker starts a fresh interpreter and imports everything again: 1.3 s each,
    after the supervisor's own 0.75 s, so two workers were ready 2.9 s after the start on
    a quiet machine (4.2 s beside enrich and notify starting). Forked, they start with the
    imports done and share those pages with the supervisor until written. Nothing runs yet
    at fork time: no thread, no event loop, no connection (the lifespan opens them in each
    worker), and prometheus_client's per-process files are named by the pid it finds on
    the first write, which is the worker's.
    """
    import ingest.app  # noqa: F401  (imported for the workers to inherit)

    gc.freeze()  # what was imported lives as long as the process: no collection copies it
    uvicorn._subprocess.spawn = multiprocessing.get_context("fork")  # type: ignore[assignment]


def main() -> None:
    settings = IngestSettings()
    setup_logging(settings, SERVICE)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,  # keep our JSON logging
        "access_log": False,  # request lines carry nothing an SRE needs that metrics/traces lack
        "timeout_graceful_shutdown": 20,
        "http": JoinedWritesProtocol,
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
        _fork_workers()
        uvicorn.run("ingest.__main__:worker_app", factory=True, workers=settings.workers, **options)


if __name__ == "__main__":
    main()
