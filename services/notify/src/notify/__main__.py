"""`terrain-notify`: run the notify consumer and outbox sender until SIGTERM."""

from __future__ import annotations

import asyncio

from notify.app import create_app
from notify.handlers import SERVICE
from notify.settings import NotifySettings
from terrain_runtime.telemetry import setup_logging


def main() -> None:
    settings = NotifySettings()
    setup_logging(settings, SERVICE)
    asyncio.run(create_app(settings).run())


if __name__ == "__main__":
    main()
