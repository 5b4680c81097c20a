"""Flows across domains that run in the background: syncing connectors (and, later, scoring)."""
