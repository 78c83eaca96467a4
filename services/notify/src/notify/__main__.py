"""`terrain-notify`: run the notify consumer, outbox sender, escalation and acknowledgement
page until SIGTERM."""

from __future__ import annotations

import uvloop
from prometheus_client import start_http_server

from notify.app import create_app
from notify.settings import NotifySettings
from notify.stages import SERVICE
from terrain_runtime.telemetry import setup_logging


def main() -> None:
    settings = NotifySettings()
    setup_logging(settings, SERVICE)
    # The page serves /metrics too; a separate port keeps scraping off the public one.
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0")  # noqa: S104 - scraped in-cluster
    uvloop.run(create_app(settings).run())


if __name__ == "__main__":
    main()
