"""Governance: members vote on which scorers (and which versions) the cooperative offers."""
