"""`terrain-enrich`: run the enrich consumer until SIGTERM, then drain and stop."""

from __future__ import annotations

import asyncio

from enrich.app import create_app
from enrich.handlers import SERVICE
from enrich.settings import EnrichSettings
from terrain_runtime.telemetry import setup_logging


def main() -> None:
    settings = EnrichSettings()
    setup_logging(settings, SERVICE)
    asyncio.run(create_app(settings).run())


if __name__ == "__main__":
    main()
