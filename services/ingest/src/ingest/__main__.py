"""`terrain-ingest`: run the ingest API with uvicorn."""

from __future__ import annotations

import uvicorn

from ingest.app import SERVICE, create_app
from ingest.settings import IngestSettings
from terrain_runtime.telemetry import setup_logging


def main() -> None:
    settings = IngestSettings()
    setup_logging(settings, SERVICE)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our JSON logging
        access_log=False,  # request lines carry nothing an SRE needs that metrics/traces lack
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
