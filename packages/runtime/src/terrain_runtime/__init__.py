"""Terrain's shared runtime: settings base, privacy primitives, Kafka, PostgreSQL, telemetry."""

__version__ = "0.1.0"
