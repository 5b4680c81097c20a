"""Redirect URIs (OA-02): the strict syntax coop registers, and the origin that may go into a
header (the consent page's CSP).

A redirect URI is an absolute RFC 3986 URI in ASCII: https (http only on loopback), a host
that is a DNS name in IDNA A-label form, an IPv4 dotted quad or an IPv6 literal, an optional
port, a path and a query of RFC 3986 characters minus `;` `,` `'` `*`, and no user
information or fragment. A host typed in Unicode is refused with its A-label form suggested:
redirect URIs are compared byte for byte (RFC 9700 §4.1.3), so the registered string must be
the one the client sends.

A-labels are checked with the `idna` package (IDNA 2008 and UTS 46, what browsers resolve):
the stdlib codec implements IDNA 2003, which maps some names differently (ß, ς) and accepts
code points that IDNA 2008 forbids.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

from coop.errors import InvalidRedirectUriError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})
MAX_URL = 500

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_DOTTED_QUAD = re.compile(
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\Z"
)
# WHATWG URL: a host whose last label is a number is parsed as IPv4 (`0x7f.1` is 127.0.0.1).
_NUMERIC_LABEL = re.compile(r"(?:\d+|0x[0-9a-f]*)\Z")
# RFC 3986 pchar without the sub-delims that mean something in headers (`;` `,` `'`) and
# without `*` (a wildcard, never allowed).
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&()+=:@]|%[0-9A-Fa-f]{2})"
_URI = re.compile(
    r"(?P<scheme>https|http)://"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    rf"(?P<path>(?:/{_PCHAR}*)*)"
    rf"(?:\?(?P<query>(?:{_PCHAR}|[/?])*))?\Z"
)


@dataclass(frozen=True)
class Origin:
    """The scheme, host and port of a checked redirect URI: only these reach a header."""

    scheme: str
    host: str  # lower-case A-labels, a dotted quad, or a bracketed IPv6 literal
    port: int | None

    @property
    def netloc(self) -> str:
        """host[:port], as the consent page shows it (A-labels: no look-alike Unicode)."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def csp_source(self) -> str:
        """A CSP3 source expression for this origin. The host-source grammar has no IPv6
        literals, so for those the scheme alone (`https:`) is the narrowest valid source."""
        if self.host.startswith("["):
            return f"{self.scheme}:"
        return f"{self.scheme}://{self.netloc}"


def _refuse(message: str) -> InvalidRedirectUriError:
    return InvalidRedirectUriError(message)


def _a_label_hint(uri: str) -> str:
    """The URI with its host in A-label form, when that exists (for the error message)."""
    match = re.match(r"(https?://)([^/:?#]+)(.*)\Z", uri, re.DOTALL)
    if not match:
        return ""
    try:
        ascii_host = idna.encode(match.group(2), uts46=True).decode()
    except (idna.IDNAError, UnicodeError):
        return ""
    rest = match.group(3)
    if not rest.isascii():
        return ""
    return f" Write the host in its IDNA form: {match.group(1)}{ascii_host}{rest}"


def _check_dns_name(host: str) -> str:
    name = host.lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _refuse("A redirect URI's host must be a valid DNS name.")
    if _NUMERIC_LABEL.match(labels[-1]):
        raise _refuse("A redirect URI's host must be a DNS name or a dotted IPv4 address.")
    for label in labels:
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise _refuse(f"The host label {label} is not a valid IDNA name.") from None
    return name


def _check_host(host: str) -> str:
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _refuse("A redirect URI's IPv6 address is not valid.") from None
        return f"[{address.compressed}]"
    if _DOTTED_QUAD.match(host):
        return host
    return _check_dns_name(host)


def parse_redirect_uri(uri: str) -> Origin:
    """The origin of `uri` when coop accepts it as a redirect URI, else
    InvalidRedirectUriError (`invalid_redirect_uri`) with a message that says why."""
    if not uri or len(uri) > MAX_URL:
        raise _refuse(f"A redirect URI must be 1 to {MAX_URL} characters.")
    if not uri.isascii():
        raise _refuse(
            "A redirect URI must be ASCII (percent-encode the path)." + _a_label_hint(uri)
        )
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        raise _refuse("A redirect URI must be a URL without spaces.")
    if "#" in uri:
        raise _refuse("A redirect URI must not contain a fragment.")
    if "*" in uri:
        raise _refuse("A redirect URI must not contain wildcards.")
    if re.match(r"https?://[^/?]*@", uri):
        raise _refuse("A redirect URI needs a host and no user information.")
    if not re.match(r"https?://", uri):
        raise _refuse("A redirect URI must be an https URL.")
    if re.match(r"https?://[/?]", uri):
        raise _refuse("A redirect URI needs a host and no user information.")
    match = _URI.match(uri)
    if match is None:
        raise _refuse(
            "Not a valid redirect URI: use only letters, digits and - . _ ~ ! $ & ( ) + = : @ / ?"
            " or %XX escapes (no ; , ' or quotes)."
        )
    origin = _origin(match)
    if origin.scheme == "http" and origin.host not in LOOPBACK_HOSTS:
        raise _refuse(
            "A redirect URI must use https (http only for 127.0.0.1, [::1] or localhost)."
        )
    return origin


def _origin(match: re.Match[str]) -> Origin:
    host = _check_host(match.group("host"))
    port_text = match.group("port")
    port = int(port_text) if port_text is not None else None
    if port is not None and not 0 < port < 65536:
        raise _refuse("A redirect URI's port must be between 1 and 65535.")
    return Origin(match.group("scheme"), host, port)
