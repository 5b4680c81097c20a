"""Built-in connectors (registered through entry points like any third-party connector) and
helpers they share: Retry-After parsing, safe text (HTTP status -> contract error: rest.py)."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

DEFAULT_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 24 * 60 * 60.0


def parse_retry_after(value: str | None, now: datetime) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 §10.2.3)."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER
    return min(max(seconds, 1.0), MAX_RETRY_AFTER)


class _TextExtractor(HTMLParser):
    SKIP = frozenset({"script", "style", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in ("p", "br", "div", "li"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def plain_text(markup: str | None) -> str:
    """Text content of an HTML fragment: tags dropped, entities decoded, whitespace collapsed.

    The result is still untrusted text: templates escape it when they show it."""
    if not markup:
        return ""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def safe_url(value: Any) -> str | None:
    """The value if it is an absolute http(s) URL of sane length, else None."""
    if isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) < 2048:
        return value
    return None


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address: where plain http is tolerated (tests, local
    development), since the SSRF guard refuses it anyway unless the operator allow-listed it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["is_loopback_host", "parse_retry_after", "plain_text", "safe_url"]
