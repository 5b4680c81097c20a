"""Connectors: data sources a member explicitly authorizes, and the engine that syncs them."""
