"""Fake upstream providers: real HTTP servers on loopback that tests point connectors at."""
