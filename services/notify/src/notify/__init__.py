"""Notify: urgent complaints reach the right country's managers in seconds, once."""

__version__ = "0.1.0"
