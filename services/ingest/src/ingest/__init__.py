"""Ingest: the field app's only door into Terrain."""

__version__ = "0.1.0"

SERVICE = "ingest"
