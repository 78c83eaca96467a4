"""`terrain-enrich`: run the enrich consumer until SIGTERM, then drain and stop."""

from __future__ import annotations

import uvloop
from prometheus_client import start_http_server

from enrich.app import create_app
from enrich.settings import EnrichSettings
from enrich.stages import SERVICE
from terrain_runtime.telemetry import setup_logging


def main() -> None:
    settings = EnrichSettings()
    setup_logging(settings, SERVICE)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0")  # noqa: S104 - scraped in-cluster
    uvloop.run(create_app(settings).run())


if __name__ == "__main__":
    main()
