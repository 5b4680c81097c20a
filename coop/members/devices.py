"""A short, human label for a browser ("Firefox on Linux") from its User-Agent header."""

from __future__ import annotations

import re

# Order matters: many browsers include the tokens of the ones they descend from.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx/", "httpx"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def device_label(user_agent: str | None) -> str:
    """E.g. "Firefox on Linux"; "Unknown browser" when nothing is recognised."""
    ua = _PRINTABLE.sub("", user_agent or "")[:512]
    browser = next((name for token, name in _BROWSERS if token in ua), None)
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return f"{browser or 'Unknown browser'}" + (f" on {system}" if system else "")
    return "Unknown browser"
