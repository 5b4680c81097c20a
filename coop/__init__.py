"""coop: a consent-first data cooperative server."""

__version__ = "0.1.0"
