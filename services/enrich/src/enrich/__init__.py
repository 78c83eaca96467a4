"""Enrich: place each submission on the map and in its segment, store it exactly once."""

__version__ = "0.1.0"
